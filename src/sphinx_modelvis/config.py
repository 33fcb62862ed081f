"""Settings of a documentation site (:class:`ModelvisConfig`) and of one figure (:class:`FigureOptions`).

Each setting is declared once, as a field that carries its type, its default, its help text and the rule its
value must keep (:class:`Rule`). A figure option that a site setting backs takes that setting's default and
rule (``_option(site="columns")``); the hosts register, convert and check every option from these declarations.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import ConfigError
from .memory import memory_mode, optimizer_name
from .option_text import classes, dependency_list, flag, length, memory_size, optional_text, parser_for
from .placement import device_map_option, tp_ranks
from .setting_rules import POSITIVE_SECONDS, TORCH_DEVICE, Rule, at_least

__all__ = [
    "DEFAULT_COLLAPSE_SUMMARY",
    "LATE_TREE_SETTINGS",
    "OPTION_SPEC",
    "FigureOptions",
    "ModelvisConfig",
    "Rule",
    "TreeSettings",
    "convert_options",
    "parse_figure_options",
    "resolve_figure_options",
]

DEFAULT_COLLAPSE_SUMMARY = "Click to view output"


def _declares_dependencies(value: str) -> bool:
    try:
        dependency_list(value)
    except ValueError:
        return not value.strip()  # empty: none declared
    return True


def _memory_size(value: int | str) -> bool:
    try:
        memory_size(value, total=1)
    except ValueError:
        return False
    return True


def _setting(default: Any, help: str, rule: Rule | None = None) -> Any:
    return field(default=default, metadata={"help": help, "rule": rule})


@dataclass(frozen=True, kw_only=True)
class ModelvisConfig:
    """Site-wide settings. Sphinx registers each field as ``modelvis_<field>``; MkDocs takes them as plugin options.

    Fields that are also figure options (``theme``, ``format``, ``columns``, ``device``, ``timeout``,
    ``keep_non_params``, ...) are the defaults a figure's own option overrides.
    """

    show_code: bool = _setting(True, "Show each snippet's code above its figure as a highlighted Python block.")
    timeout: float = _setting(300.0, "Seconds one snippet may run before its worker is killed.", POSITIVE_SECONDS)
    cache_dir: str = _setting(
        "",
        "Folder of cached figures, one folder a CI job can keep between runs; relative to the configuration "
        "directory. Empty: `_build/.modelvis-cache` next to `conf.py` (whatever the output folder), or "
        "`.modelvis-cache` next to `mkdocs.yml`.",
    )
    execute: Literal["auto", "always", "never"] = _setting(
        "auto",
        "`auto`: use cached figures and run what is missing; `always`: run every snippet; "
        "`never`: run nothing, a figure with no cached output is an error.",
    )
    on_error: Literal["warn", "raise"] = _setting(
        "warn", "`warn`: a failing snippet gives a warning and an error box; `raise`: it stops the build."
    )
    pre_code: str = _setting(
        "",
        "Python run at the start of each page's namespace (and after `:reset:`), with the site's `device`, "
        "`columns` and `timeout`.",
    )
    fork_workers: bool = _setting(
        True,
        "Fork each page's worker from a template process that has imported the installed packages the snippets "
        "import (torch, transformers, ...): milliseconds instead of seconds per worker, with `-j` too. `False`: "
        "start each worker as a new Python process (for a snippet that must set something before a package is "
        "first imported).",
    )
    progress_interval: float = _setting(
        10.0,
        "Seconds between the log's `still running` lines of a snippet that runs long (each snippet's start and "
        "end are logged too).",
        POSITIVE_SECONDS,
    )
    cache_max_age: float = _setting(
        30.0,
        "Days a figure cache entry that no build has used is kept: each build removes older ones (as "
        "`modelvis cache prune` does); 0 keeps every entry.",
        Rule(lambda value: value >= 0, "0 or more", "a number of days, 0 or more"),
    )
    keep_warm: float | None = _setting(
        None,
        "Seconds the template process (which has imported torch and what the snippets import) is kept between "
        "builds for the next build of the site to reuse, ending after that long unused; 0: it ends with each "
        "build. Unset: kept 900 s under `sphinx-autobuild` and `mkdocs serve`, 0 otherwise.",
        Rule(lambda value: value >= 0, "0 or more", "a number of seconds, 0 or more"),
    )
    theme: Literal["auto", "dark", "light"] = _setting(
        "auto",
        "Colors of the figures: `auto` follows the page's light or dark mode in HTML (and is light in a PDF); "
        "`dark` or `light` pins one.",
    )
    format: Literal["interactive", "svg", "html"] = _setting(
        "interactive",
        "HTML output: `interactive` (a tree to hover, copy keys from, unfold, collapse and search), an inline "
        "`svg` picture, or `html` (rich's styled <pre>).",
    )
    open_depth: int | None = _setting(
        None, "Interactive figures start collapsed below this depth (the whole tree stays in the page).", at_least(0)
    )
    columns: int = _setting(100, "Terminal width, in characters, that output and trees are laid out to.", at_least(20))
    device: str | None = _setting(
        None, "Run snippets under `torch.device(device)`, e.g. `meta` (no weights).", TORCH_DEVICE
    )
    keep_non_params: bool = _setting(False, "Keep modules without parameters (dropout, activations) in trees.")
    expand_params: bool = _setting(False, "Put each parameter on its own line in trees.")
    show_buffers: bool = _setting(False, "Show buffers in trees.")
    max_depth: int | None = _setting(None, "Cut trees below this depth.", at_least(0))
    max_lines: int = _setting(
        1000,
        "Most lines of printed output a figure shows: its first and last lines, with a note of how many were "
        "left out between them; 0 shows everything. Trees are not cut (see `max_depth`).",
        at_least(0),
    )
    collapse_summary: str = _setting(DEFAULT_COLLAPSE_SUMMARY, "Default summary of a `:collapse:` figure.")
    depends: str = _setting(
        "",
        "What every figure depends on that its run cannot show (a file a subprocess reads, an environment "
        "variable), separated by commas: paths and globs relative to the configuration directory, `env:NAME`. "
        "A change reruns the figures.",
        Rule(_declares_dependencies, "paths, globs or env:NAME separated by commas", "dependencies"),
    )
    checkpoint_memory: int | str = _setting(
        "25%",
        "Memory the checkpoints of a kept-warm template may hold (the paused copies of each page's worker after "
        "each snippet, which let an edited figure run without replaying the snippets before it): bytes, or text "
        "such as `2GiB`, `512MiB` or `25%` of the machine's memory; the oldest are ended first beyond it. `0` "
        "keeps none. One-shot builds keep none anyway.",
        Rule(_memory_size, "a number of bytes or a size such as '2GiB' or '25%'", "a size such as 2GiB or 25%"),
    )

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            self.check_setting(spec.name, getattr(self, spec.name))

    @classmethod
    def check_setting(cls, name: str, value: Any) -> None:
        """Raise :class:`~sphinx_modelvis.errors.ConfigError` unless ``value`` is a valid value of setting ``name``."""
        spec = cls.__dataclass_fields__[name]
        kind = _SITE_TYPES[name]
        if not _matches(value, kind):
            raise ConfigError(f"{name} = {value!r} is invalid: it must be {_describe(kind)}")
        rule: Rule | None = spec.metadata["rule"]
        if rule is not None and not rule.check(value):
            raise ConfigError(f"{name} = {value!r} is invalid: it must be {rule.must_be}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, prefix: str = "") -> ModelvisConfig:
        """Build from ``values`` (``prefix + field`` keys; missing keys keep their default), validated.

        Raises :class:`~sphinx_modelvis.errors.ConfigError` naming the first invalid setting.
        """
        names = [spec.name for spec in dataclasses.fields(cls)]
        given = {name: values[prefix + name] for name in names if prefix + name in values}
        try:
            return cls(**given)
        except ConfigError as exc:
            raise ConfigError(f"{prefix}{exc}") from None

    @classmethod
    def settings(cls) -> list[tuple[str, Any, str]]:
        """``(name, default, help)`` of every setting, in declaration order (for hosts to register them)."""
        return [(spec.name, spec.default, spec.metadata["help"]) for spec in dataclasses.fields(cls)]


#: The type of each site setting (the annotations resolved once).
_SITE_TYPES: Mapping[str, Any] = types.MappingProxyType(typing.get_type_hints(ModelvisConfig))


def _describe(kind: Any) -> str:
    origin = typing.get_origin(kind)
    if origin is Literal:
        return " or ".join(repr(value) for value in typing.get_args(kind))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(kind))
    names = {bool: "True or False", int: "a whole number", float: "a number", str: "a string", type(None): "None"}
    return names.get(kind, getattr(kind, "__name__", str(kind)))


def _matches(value: Any, kind: Any) -> bool:
    origin = typing.get_origin(kind)
    if origin is Literal:
        return value in typing.get_args(kind)
    if typing.get_args(kind):  # a union
        return any(_matches(value, arg) for arg in typing.get_args(kind))
    if kind is type(None):
        return value is None
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _option(
    default: Any = None,
    *,
    site: str | None = None,
    name: str | None = None,
    parse: Callable[[str | None], Any] | None = None,
    option: bool = True,
) -> Any:
    """A figure option: written ``:name:`` (the field's name with dashes by default), read by ``parse`` (by
    default from the field's type). With ``site``, its default and its rule are the site setting's."""
    rule: Rule | None = None
    if site is not None:
        spec = ModelvisConfig.__dataclass_fields__[site]
        default, rule = spec.default, spec.metadata["rule"]
    metadata = {"site": site, "rule": rule, "parse": parse, "name": name, "option": option}
    return field(default=default, metadata=metadata)


#: The tree settings added after cache keys were first written (see :meth:`TreeSettings.key`).
LATE_TREE_SETTINGS = ("inputs", "flops", "memory", "optimizer", "targets", "device_map", "max_memory", "tp_plan")


@dataclass(frozen=True, kw_only=True)
class TreeSettings:
    """How the tree of a figure's module is built and laid out: what the worker needs, and part of the cache key."""

    keep_non_params: bool = _option(site="keep_non_params")
    expand_params: bool = _option(site="expand_params")
    show_buffers: bool = _option(site="show_buffers")
    max_depth: int | None = _option(site="max_depth")
    rootname: str = _option("root")
    #: An expression giving the inputs of one forward pass (a tensor, a tuple of positional arguments or a dict
    #: of keyword arguments): the tree is then the forward view (see :mod:`sphinx_modelvis.forward`), with ``flops``
    #: each module's FLOPs in the pass, by PyTorch's flop counter (see :mod:`sphinx_modelvis.flops`).
    inputs: str | None = _option(None)
    flops: bool = _option(False)
    #: The memory view (see :mod:`sphinx_modelvis.memory`): ``weights`` (``:memory:`` with no value), ``training``,
    #: or ``""`` for none; under training, the optimizer whose state is counted.
    memory: str = _option("", parse=memory_mode)
    optimizer: str = _option("adam", parse=optimizer_name)
    #: An expression giving an adapter config (a PEFT config, or a list of names as OpenDelta's
    #: ``modified_modules``): the tree then previews what it would touch (see :mod:`sphinx_modelvis.targets`).
    targets: str | None = _option(None)
    #: The placement view (see :mod:`sphinx_modelvis.placement`): a device map mode (``auto``, ``balanced``,
    #: ``balanced_low_0``, ``sequential``), ``hf_device_map`` (``:device-map:`` with no value) or a dict
    #: expression, for the devices of the ``max_memory`` expression; or the tensor-parallel plan over ``tp_plan``
    #: ranks (see :mod:`sphinx_modelvis.tensor_plan`).
    device_map: str = _option("", parse=device_map_option)
    max_memory: str | None = _option(None)
    tp_plan: int | None = _option(None, parse=tp_ranks)

    def key(self) -> dict[str, Any]:
        """The settings as a cache key holds them."""
        values = dataclasses.asdict(self)
        for item in dataclasses.fields(self):
            # Added after the others: left out while at their default, so that keys made before them stay valid.
            if item.name in LATE_TREE_SETTINGS and values[item.name] == item.default:
                del values[item.name]
        return values


@dataclass(frozen=True, kw_only=True)
class FigureOptions:
    """Everything that shapes one figure, with the site's defaults filled in.

    ``expr`` is the directive's argument: evaluated after the snippet, its tree is the figure; ``tree`` how
    that tree is built. ``collapse`` is the summary of a closed ``<details>``, or ``None`` when the figure
    is shown open. ``compare`` names an earlier figure of the page (its ``:name:``): this figure's tree is
    then drawn marked against that figure's tree, by the host, after the snippet ran (it is no part of the
    cache key).
    """

    expr: str | None = _option(None, option=False)
    tree: TreeSettings = field(default_factory=TreeSettings)
    max_lines: int = _option(site="max_lines")
    device: str | None = _option(site="device")
    theme: str = _option(site="theme")
    format: str = _option(site="format")
    open_depth: int | None = _option(site="open_depth")
    compare: str | None = _option(None)
    changes_only: bool = _option(False)
    columns: int = _option(site="columns")
    timeout: float = _option(site="timeout")
    reset: bool = _option(False)
    show_code: bool = _option(site="show_code")
    collapse: str | None = _option(None, parse=optional_text)
    caption: str | None = _option(None)
    name: str | None = _option(None)
    width: str | None = _option(None, parse=length)
    align: Literal["left", "center", "right"] | None = _option(None)
    alt: str | None = _option(None)
    classes: tuple[str, ...] = _option((), name="class", parse=classes)
    #: Declared dependencies: paths and globs relative to the page's folder, ``env:NAME``.
    depends: tuple[str, ...] = _option((), parse=dependency_list)

    @classmethod
    def of_site(cls, config: ModelvisConfig) -> FigureOptions:
        """The options of a figure that sets none: the site's settings (what ``pre_code`` runs with)."""
        return resolve_figure_options(None, {}, config)

    def execution_key(self) -> dict[str, Any]:
        """The options that change what the snippet shows (so they are part of its cache key)."""
        return {
            "expr": self.expr,
            **self.tree.key(),
            "max_lines": self.max_lines,
            "device": self.device,
            "columns": self.columns,
            **({"depends": list(self.depends)} if self.depends else {}),
        }


def _converter(spec: dataclasses.Field[Any], kind: Any) -> Callable[[str | None], Any]:
    """The converter of an option's text: its parser, then the rule of the setting it comes from.

    An option a site setting backs is read as that setting's type (its choices, its number kind).
    """
    site = spec.metadata["site"]
    parse = spec.metadata["parse"] or parser_for(_SITE_TYPES[site] if site is not None else kind)
    rule: Rule | None = spec.metadata["rule"]
    if rule is None:
        return parse

    def convert(value: str | None) -> Any:
        converted = parse(value)
        if not rule.check(converted):
            raise ValueError(f"expected {rule.expected}, got {converted!r}")
        return converted

    return convert


_Declared = tuple[type, dataclasses.Field[Any], Callable[[str | None], Any]]


def _declared_options() -> dict[str, _Declared]:
    """Each figure option as written in a page: the options class and field it fills, and its converter."""
    declared: dict[str, _Declared] = {}
    for owner in (TreeSettings, FigureOptions):
        hints = typing.get_type_hints(owner)
        for spec in dataclasses.fields(owner):
            if spec.metadata.get("option"):
                written = spec.metadata["name"] or spec.name.replace("_", "-")
                declared[written] = (owner, spec, _converter(spec, hints[spec.name]))
    return declared


_OPTIONS = _declared_options()


def _option_spec() -> dict[str, Callable[[str | None], Any]]:
    spec: dict[str, Callable[[str | None], Any]] = {}
    for name, (_owner, _field, convert) in _OPTIONS.items():
        spec[name] = convert
        if name == "show-code":
            spec["hide-code"] = flag  # its opposite, for a site that shows code by default
    return spec


#: The figure options (as written in a directive or fence) and the converter of each one's text.
OPTION_SPEC = _option_spec()


def convert_options(raw: Mapping[str, str | None]) -> dict[str, Any]:
    """Convert option texts (``{"max-depth": "2", "reset": None}``) with :data:`OPTION_SPEC`.

    Raises :class:`~sphinx_modelvis.errors.ConfigError` naming an unknown option or a bad value.
    """
    converted: dict[str, Any] = {}
    for name, value in raw.items():
        convert = OPTION_SPEC.get(name)
        if convert is None:
            raise ConfigError(f"unknown option :{name}:; the options are: {', '.join(OPTION_SPEC)}")
        try:
            converted[name] = convert(value)
        except ValueError as exc:
            raise ConfigError(f"invalid value for :{name}: ({exc})") from None
    return converted


def resolve_figure_options(argument: str | None, options: Mapping[str, Any], config: ModelvisConfig) -> FigureOptions:
    """The figure's options from its argument and *converted* options, defaults taken from ``config``."""
    if "hide-code" in options and "show-code" in options:
        raise ConfigError("use :hide-code: or :show-code:, not both")
    values: dict[type, dict[str, Any]] = {TreeSettings: {}, FigureOptions: {}}
    for written, (owner, spec, _convert) in _OPTIONS.items():
        if written in options:
            values[owner][spec.name] = options[written]
        elif spec.metadata["site"] is not None:
            values[owner][spec.name] = getattr(config, spec.metadata["site"])
    figure = values[FigureOptions]
    if "hide-code" in options:
        figure["show_code"] = not options["hide-code"]
    if figure.get("collapse") == "":
        figure["collapse"] = config.collapse_summary
    figure["classes"] = tuple(figure.get("classes", ()))
    figure["depends"] = tuple(figure.get("depends", ()))
    if values[TreeSettings].get("flops") and not values[TreeSettings].get("inputs"):
        raise ConfigError(":flops: counts a forward pass: give the figure :inputs: too")
    expr = (argument or "").strip() or None
    return FigureOptions(expr=expr, tree=TreeSettings(**values[TreeSettings]), **figure)


def parse_figure_options(argument: str | None, raw: Mapping[str, str | None], config: ModelvisConfig) -> FigureOptions:
    """A figure's options from the texts written in the page: what a host that parses fences itself calls."""
    return resolve_figure_options(argument, convert_options(raw), config)
