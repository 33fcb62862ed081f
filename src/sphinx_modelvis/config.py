"""Settings of a documentation site (:class:`ModelvisConfig`) and of one figure (:class:`FigureOptions`)."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import ConfigError

__all__ = [
    "DEFAULT_COLLAPSE_SUMMARY",
    "OPTION_SPEC",
    "FigureOptions",
    "ModelvisConfig",
    "convert_options",
    "parse_figure_options",
    "resolve_figure_options",
]

DEFAULT_COLLAPSE_SUMMARY = "Click to view output"

_DEVICE = re.compile(r"^[a-z_]+(:\d+)?$")
_LENGTH = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*(em|ex|px|in|cm|mm|pt|pc|%)?$")


def _setting(default: Any, help: str, **checks: Any) -> Any:
    return field(default=default, metadata={"help": help, **checks})


@dataclass(frozen=True, kw_only=True)
class ModelvisConfig:
    """Site-wide settings. Sphinx registers each field as ``modelvis_<field>``; MkDocs takes them as plugin options.

    Fields that are also figure options (``theme``, ``format``, ``columns``, ``device``, ``timeout``,
    ``keep_non_params``, ...) are the defaults a figure's own option overrides.
    """

    show_code: bool = _setting(True, "Show each snippet's code above its figure as a highlighted Python block.")
    timeout: float = _setting(300.0, "Seconds one snippet may run before its worker is killed.", minimum=0.001)
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
    pre_code: str = _setting("", "Python run at the start of each page's namespace (and after `:reset:`).")
    fork_workers: bool = _setting(
        True,
        "Fork each page's worker from a template process that has imported the installed packages the snippets "
        "import (torch, transformers, ...): milliseconds instead of seconds per worker, with `-j` too. `False`: "
        "start each worker as a new Python process (for a snippet that must set something before a package is "
        "first imported).",
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
        None, "Interactive figures start collapsed below this depth (the whole tree stays in the page).", minimum=0
    )
    columns: int = _setting(100, "Terminal width, in characters, that output and trees are laid out to.", minimum=20)
    device: str | None = _setting(None, "Run snippets under `torch.device(device)`, e.g. `meta` (no weights).")
    keep_non_params: bool = _setting(False, "Keep modules without parameters (dropout, activations) in trees.")
    expand_params: bool = _setting(False, "Put each parameter on its own line in trees.")
    show_buffers: bool = _setting(False, "Show buffers in trees.")
    max_depth: int | None = _setting(None, "Cut trees below this depth.", minimum=0)
    max_lines: int = _setting(
        1000,
        "Most lines of printed output a figure shows: its first and last lines, with a note of how many were "
        "left out between them; 0 shows everything. Trees are not cut (see `max_depth`).",
        minimum=0,
    )
    collapse_summary: str = _setting(DEFAULT_COLLAPSE_SUMMARY, "Default summary of a `:collapse:` figure.")

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for spec in dataclasses.fields(self):
            _check_setting(spec.name, getattr(self, spec.name), hints[spec.name], spec.metadata)

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
    if typing.get_args(kind) and origin is not Literal:  # a union
        return any(_matches(value, arg) for arg in typing.get_args(kind))
    if kind is type(None):
        return value is None
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _check_setting(name: str, value: Any, kind: Any, checks: Mapping[str, Any]) -> None:
    if not _matches(value, kind):
        raise ConfigError(f"{name} = {value!r} is invalid: it must be {_describe(kind)}")
    minimum = checks.get("minimum")
    if minimum is not None and value is not None and value < minimum:
        raise ConfigError(f"{name} = {value!r} is invalid: it must be at least {minimum}")
    if name == "device" and value is not None and not _DEVICE.match(value):
        raise ConfigError(f"device = {value!r} is invalid: it must be a torch device such as 'meta' or 'cuda:0'")


# Converters of the figure options: each takes the option's text (None when the option has no value)
# and raises ValueError on a bad value, as docutils option specs do, so Sphinx can use them directly.


def _flag(value: str | None) -> bool:
    text = (value or "").strip().lower()
    if text in ("", "true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected no value (or true/false), got {value!r}")


def _text(value: str | None) -> str:
    if value is None or not value.strip():
        raise ValueError("a value is required")
    return value.strip()


def _optional_text(value: str | None) -> str:
    return (value or "").strip()


def _int_at_least(minimum: int) -> Callable[[str | None], int]:
    def convert(value: str | None) -> int:
        try:
            number = int(_text(value))
        except ValueError:
            raise ValueError(f"expected a whole number, got {value!r}") from None
        if number < minimum:
            raise ValueError(f"expected a number of at least {minimum}, got {number}")
        return number

    return convert


def _seconds(value: str | None) -> float:
    try:
        number = float(_text(value))
    except ValueError:
        raise ValueError(f"expected a number of seconds, got {value!r}") from None
    if not number > 0:
        raise ValueError(f"expected a positive number of seconds, got {value!r}")
    return number


def _choice(*choices: str) -> Callable[[str | None], str]:
    def convert(value: str | None) -> str:
        text = _text(value).lower()
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return text

    return convert


def _device(value: str | None) -> str:
    text = _text(value)
    if not _DEVICE.match(text):
        raise ValueError(f"expected a torch device such as meta, cpu or cuda:0, got {value!r}")
    return text


def _length(value: str | None) -> str:
    match = _LENGTH.match(_text(value))
    if not match:
        raise ValueError(f"expected a length such as 600px, 80% or 30em, got {value!r}")
    return match.group(1) + (match.group(2) or "px")


def _classes(value: str | None) -> list[str]:
    names = [re.sub(r"[^a-z0-9]+", "-", word.lower()).strip("-") for word in _text(value).split()]
    if not all(names):
        raise ValueError(f"expected class names, got {value!r}")
    return names


#: The figure options (as written in a directive or fence) and the converter of each one's text.
OPTION_SPEC: dict[str, Callable[[str | None], Any]] = {
    "keep-non-params": _flag,
    "expand-params": _flag,
    "show-buffers": _flag,
    "max-depth": _int_at_least(0),
    "max-lines": _int_at_least(0),
    "rootname": _text,
    "device": _device,
    "theme": _choice("auto", "dark", "light"),
    "format": _choice("interactive", "svg", "html"),
    "open-depth": _int_at_least(0),
    "compare": _text,
    "changes-only": _flag,
    "inputs": _text,
    "columns": _int_at_least(20),
    "timeout": _seconds,
    "reset": _flag,
    "hide-code": _flag,
    "show-code": _flag,
    "collapse": _optional_text,
    "caption": _text,
    "name": _text,
    "width": _length,
    "align": _choice("left", "center", "right"),
    "alt": _text,
    "class": _classes,
}


@dataclass(frozen=True, kw_only=True)
class FigureOptions:
    """Everything that shapes one figure, with the site's defaults filled in.

    ``expr`` is the directive's argument: evaluated after the snippet, its tree is the figure.
    ``collapse`` is the summary of a closed ``<details>``, or ``None`` when the figure is shown open.
    ``compare`` names an earlier figure of the page (its ``:name:``): this figure's tree is then drawn marked
    against that figure's tree, by the host, after the snippet ran (it is no part of the cache key).
    ``inputs`` is an expression of the page's namespace: the figure's tree is then the forward view of one
    pass on it.
    """

    expr: str | None = None
    keep_non_params: bool = False
    expand_params: bool = False
    show_buffers: bool = False
    max_depth: int | None = None
    max_lines: int = 1000
    rootname: str = "root"
    device: str | None = None
    theme: str = "auto"
    format: str = "interactive"
    open_depth: int | None = None
    compare: str | None = None
    changes_only: bool = False
    inputs: str | None = None
    columns: int = 100
    timeout: float = 300.0
    reset: bool = False
    show_code: bool = True
    collapse: str | None = None
    caption: str | None = None
    name: str | None = None
    width: str | None = None
    align: str | None = None
    alt: str | None = None
    classes: tuple[str, ...] = ()

    def execution_key(self) -> dict[str, Any]:
        """The options that change what the snippet shows (so they are part of its cache key)."""
        return {
            "expr": self.expr,
            "keep_non_params": self.keep_non_params,
            "expand_params": self.expand_params,
            "show_buffers": self.show_buffers,
            "max_depth": self.max_depth,
            "max_lines": self.max_lines,
            "rootname": self.rootname,
            "device": self.device,
            "columns": self.columns,
            **({"inputs": self.inputs} if self.inputs else {}),
        }


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
    show_code = config.show_code
    if "hide-code" in options:
        show_code = not options["hide-code"]
    if "show-code" in options:
        show_code = options["show-code"]
    collapse = options.get("collapse")
    expr = (argument or "").strip() or None
    return FigureOptions(
        expr=expr,
        keep_non_params=options.get("keep-non-params", config.keep_non_params),
        expand_params=options.get("expand-params", config.expand_params),
        show_buffers=options.get("show-buffers", config.show_buffers),
        max_depth=options.get("max-depth", config.max_depth),
        max_lines=options.get("max-lines", config.max_lines),
        rootname=options.get("rootname", "root"),
        device=options.get("device", config.device),
        theme=options.get("theme", config.theme),
        format=options.get("format", config.format),
        open_depth=options.get("open-depth", config.open_depth),
        compare=options.get("compare"),
        changes_only=options.get("changes-only", False),
        inputs=options.get("inputs"),
        columns=options.get("columns", config.columns),
        timeout=options.get("timeout", config.timeout),
        reset=options.get("reset", False),
        show_code=show_code,
        collapse=None if collapse is None else (collapse or config.collapse_summary),
        caption=options.get("caption"),
        name=options.get("name"),
        width=options.get("width"),
        align=options.get("align"),
        alt=options.get("alt"),
        classes=tuple(options.get("class", ())),
    )


def parse_figure_options(argument: str | None, raw: Mapping[str, str | None], config: ModelvisConfig) -> FigureOptions:
    """A figure's options from the texts written in the page: what a host that parses fences itself calls."""
    return resolve_figure_options(argument, convert_options(raw), config)
