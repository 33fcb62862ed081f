"""The site configuration (`ModelvisConfig`) and the figure options parser that both hosts share."""

from __future__ import annotations

import dataclasses

import pytest

from sphinx_modelvis.config import (
    OPTION_SPEC,
    FigureOptions,
    ModelvisConfig,
    TreeSettings,
    convert_options,
    parse_figure_options,
)
from sphinx_modelvis.errors import ConfigError, ModelvisError


def test_every_setting_has_a_default_and_help_text() -> None:
    settings = ModelvisConfig.settings()
    names = [name for name, _, _ in settings]
    for required in ("show_code", "timeout", "cache_dir", "execute", "on_error", "pre_code", "theme", "format"):
        assert required in names
    assert all(help.strip() for _, _, help in settings)
    defaults = dict((name, default) for name, default, _ in settings)
    assert defaults["timeout"] == 300.0
    assert defaults["execute"] == "auto"
    assert defaults["on_error"] == "warn"


def test_from_mapping_reads_prefixed_keys_and_keeps_defaults() -> None:
    config = ModelvisConfig.from_mapping(
        {"modelvis_theme": "light", "modelvis_timeout": 5, "unrelated": 1}, prefix="modelvis_"
    )
    assert config.theme == "light"
    assert config.timeout == 5
    assert config.execute == "auto"


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"modelvis_timeout": "5"}, "modelvis_timeout = '5' is invalid: it must be a number"),
        ({"modelvis_timeout": 0}, "modelvis_timeout = 0 is invalid: it must be more than 0"),
        ({"modelvis_execute": "sometimes"}, "'auto' or 'always' or 'never'"),
        ({"modelvis_on_error": "ignore"}, "modelvis_on_error = 'ignore'"),
        ({"modelvis_theme": "blue"}, "modelvis_theme = 'blue'"),
        ({"modelvis_columns": True}, "modelvis_columns = True is invalid: it must be a whole number"),
        ({"modelvis_device": "Meta GPU"}, "modelvis_device = 'Meta GPU' is invalid: it must be a torch device"),
        ({"modelvis_max_depth": -1}, "modelvis_max_depth = -1 is invalid: it must be at least 0"),
        ({"modelvis_columns": 19}, "modelvis_columns = 19 is invalid: it must be at least 20"),
        ({"modelvis_show_code": "yes"}, "modelvis_show_code = 'yes' is invalid: it must be True or False"),
    ],
)
def test_invalid_settings_are_named_in_the_error(values: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ModelvisConfig.from_mapping(values, prefix="modelvis_")
    assert named in str(caught.value)
    assert isinstance(caught.value, ModelvisError)


def test_the_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ModelvisConfig().theme = "light"  # type: ignore[misc]


def test_options_take_their_defaults_from_the_config() -> None:
    config = ModelvisConfig(theme="light", columns=80, device="meta", show_code=False, keep_non_params=True)
    options = parse_figure_options(None, {}, config)
    assert options == FigureOptions(
        theme="light", columns=80, device="meta", show_code=False, tree=TreeSettings(keep_non_params=True)
    )


def test_every_directive_option_is_parsed_from_its_text() -> None:
    raw: dict[str, str | None] = {
        "keep-non-params": None,
        "expand-params": "",
        "show-buffers": "true",
        "max-depth": "2",
        "max-lines": "40",
        "rootname": "bert",
        "device": "meta",
        "theme": "Light",
        "format": "html",
        "open-depth": "2",
        "compare": " before ",
        "changes-only": None,
        "inputs": " torch.ones(1, 4) ",
        "targets": " LoraConfig(target_modules=['query']) ",
        "columns": "60",
        "timeout": "2.5",
        "reset": None,
        "hide-code": None,
        "collapse": None,
        "caption": "A *caption*",
        "name": "fig_name",
        "width": "600",
        "align": "center",
        "alt": "the tree",
        "class": "Wide  framed",
        "depends": " spec.json, data/*.txt ,env:MODEL_SIZE",
        "memory": " Training ",
        "optimizer": "SGD-Momentum",
        "flops": None,
        "device-map": " Balanced_Low_0 ",
        "max-memory": ' {0: "40GiB", "cpu": "1GiB"} ',
        "tp-plan": " 8 ",
    }
    assert set(raw) | {"show-code"} == set(OPTION_SPEC), "this test covers every option (show-code: below)"
    options = parse_figure_options(" model.bert ", raw, ModelvisConfig())
    assert options == FigureOptions(
        expr="model.bert",
        tree=TreeSettings(
            keep_non_params=True,
            expand_params=True,
            show_buffers=True,
            max_depth=2,
            rootname="bert",
            inputs="torch.ones(1, 4)",
            flops=True,
            memory="training",
            optimizer="sgd-momentum",
            targets="LoraConfig(target_modules=['query'])",
            device_map="balanced_low_0",
            max_memory='{0: "40GiB", "cpu": "1GiB"}',
            tp_plan=8,
        ),
        max_lines=40,
        device="meta",
        theme="light",
        format="html",
        open_depth=2,
        compare="before",
        changes_only=True,
        columns=60,
        timeout=2.5,
        reset=True,
        show_code=False,
        collapse="Click to view output",
        caption="A *caption*",
        name="fig_name",
        width="600px",
        align="center",
        alt="the tree",
        classes=("wide", "framed"),
        depends=("spec.json", "data/*.txt", "env:MODEL_SIZE"),
    )


def test_flags_can_be_switched_off_and_collapse_takes_a_summary() -> None:
    config = ModelvisConfig(keep_non_params=True, show_code=False, collapse_summary="Show")
    options = parse_figure_options(None, {"keep-non-params": "false", "show-code": None, "collapse": ""}, config)
    assert options.tree.keep_non_params is False
    assert options.show_code is True
    assert options.collapse == "Show"
    assert parse_figure_options(None, {"collapse": "Output of BERT"}, config).collapse == "Output of BERT"
    assert parse_figure_options(None, {}, config).collapse is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"max-depth": "two"}, "invalid value for :max-depth: (expected a whole number, got 'two')"),
        ({"columns": "5"}, "invalid value for :columns: (expected a number of at least 20, got 5)"),
        ({"timeout": "-1"}, "invalid value for :timeout:"),
        ({"theme": "solarized"}, "expected one of auto, dark, light"),
        ({"reset": "maybe"}, "invalid value for :reset:"),
        ({"width": "wide"}, "expected a length such as 600px"),
        ({"caption": ""}, "invalid value for :caption: (a value is required)"),
        ({"colour": "red"}, "unknown option :colour:"),
        ({"hide-code": None, "show-code": None}, "use :hide-code: or :show-code:, not both"),
        ({"memory": "activations"}, "invalid value for :memory: (expected no value, weights or training, got"),
        ({"optimizer": "lion"}, "invalid value for :optimizer: (expected one of adam, adamw, sgd, sgd-momentum,"),
    ],
)
def test_bad_options_are_named(raw: dict[str, str | None], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_figure_options(None, raw, ModelvisConfig())
    assert message in str(caught.value)


def test_converters_raise_value_error_as_docutils_expects() -> None:
    with pytest.raises(ValueError):
        OPTION_SPEC["max-depth"]("x")
    assert convert_options({"max-depth": "3"}) == {"max-depth": 3}


def test_execution_key_holds_only_what_changes_the_output() -> None:
    base = FigureOptions()
    assert base.execution_key() == FigureOptions(theme="light", format="html", caption="x").execution_key()
    assert base.execution_key() != FigureOptions(device="meta").execution_key()
    assert base.execution_key() != FigureOptions(expr="m").execution_key()
    assert base.execution_key() != FigureOptions(columns=60).execution_key()
    assert base.execution_key() != FigureOptions(max_lines=0).execution_key()


def test_the_execution_key_keeps_the_layout_of_existing_caches() -> None:
    # Figures cached before the tree settings became one object keep their keys (no rebuild on upgrade).
    assert FigureOptions().execution_key() == {
        "expr": None,
        "keep_non_params": False,
        "expand_params": False,
        "show_buffers": False,
        "max_depth": None,
        "rootname": "root",
        "max_lines": 1000,
        "device": None,
        "columns": 100,
    }
    with_inputs = FigureOptions(tree=TreeSettings(inputs="x")).execution_key()
    assert with_inputs == {**FigureOptions().execution_key(), "inputs": "x"}
    with_memory = FigureOptions(tree=TreeSettings(memory="weights")).execution_key()
    assert with_memory == {**FigureOptions().execution_key(), "memory": "weights"}
    with_targets = FigureOptions(tree=TreeSettings(targets="config")).execution_key()
    assert with_targets == {**FigureOptions().execution_key(), "targets": "config"}, "the preview changes the figure"
    placed = FigureOptions(tree=TreeSettings(device_map="auto", max_memory="{0: 1}")).execution_key()
    assert placed == {**FigureOptions().execution_key(), "device_map": "auto", "max_memory": "{0: 1}"}
    planned = FigureOptions(tree=TreeSettings(tp_plan=8)).execution_key()
    assert planned == {**FigureOptions().execution_key(), "tp_plan": 8}, "the placement changes the figure"


def test_device_map_and_tp_plan_options_are_read_and_checked() -> None:
    def tree(**raw: str | None) -> TreeSettings:
        return parse_figure_options(None, raw, ModelvisConfig()).tree

    assert tree(**{"device-map": None}).device_map == "hf_device_map", "no value: the model's own map"
    assert tree(**{"device-map": "{'': 0}"}).device_map == "{'': 0}", "a dict expression, evaluated later"
    assert tree(**{"device-map": "my_map"}).device_map == "my_map", "a name, evaluated later"
    with pytest.raises(ConfigError, match=r"invalid value for :device-map:.*auto, balanced"):
        tree(**{"device-map": "everywhere please"})
    with pytest.raises(ConfigError, match=r"invalid value for :tp-plan:.*at least 1"):
        tree(**{"tp-plan": "0"})


def test_a_bare_memory_option_means_weights() -> None:
    assert parse_figure_options(None, {"memory": None}, ModelvisConfig()).tree.memory == "weights"
    assert parse_figure_options(None, {"memory": "off"}, ModelvisConfig()).tree.memory == ""
    assert parse_figure_options(None, {}, ModelvisConfig()).tree.optimizer == "adam"


def test_every_tree_setting_is_part_of_the_execution_key() -> None:
    # A setting added to TreeSettings reaches the key (and the worker) without being listed anywhere else.
    changed = {bool: True, int: 3, str: "other"}
    for spec in dataclasses.fields(TreeSettings):
        kind = next(kind for kind in changed if kind.__name__ in str(spec.type))
        tree = dataclasses.replace(TreeSettings(), **{spec.name: changed[kind]})
        assert FigureOptions(tree=tree).execution_key() != FigureOptions().execution_key(), spec.name


def test_a_figure_that_sets_nothing_takes_every_site_setting_that_backs_an_option() -> None:
    assert FigureOptions() == FigureOptions.of_site(ModelvisConfig()), "the defaults are the site's, declared once"
    config = ModelvisConfig(
        theme="dark",
        format="svg",
        open_depth=2,
        columns=60,
        device="meta",
        timeout=9.0,
        show_code=False,
        max_lines=7,
        keep_non_params=True,
        expand_params=True,
        show_buffers=True,
        max_depth=3,
    )
    assert FigureOptions.of_site(config) == FigureOptions(
        theme="dark",
        format="svg",
        open_depth=2,
        columns=60,
        device="meta",
        timeout=9.0,
        show_code=False,
        max_lines=7,
        tree=TreeSettings(keep_non_params=True, expand_params=True, show_buffers=True, max_depth=3),
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"max-lines": "-1"}, "invalid value for :max-lines: (expected a number of at least 0, got -1)"),
        ({"open-depth": "-2"}, "invalid value for :open-depth: (expected a number of at least 0, got -2)"),
        ({"max-depth": "-1"}, "invalid value for :max-depth: (expected a number of at least 0, got -1)"),
        ({"device": "Meta GPU"}, "invalid value for :device: (expected a torch device such as meta, cpu or cuda:0"),
        ({"timeout": "0"}, "invalid value for :timeout: (expected a positive number of seconds, got 0.0)"),
    ],
)
def test_a_figure_option_keeps_the_rule_of_the_site_setting_behind_it(raw: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_figure_options(None, raw, ModelvisConfig())
    assert message in str(caught.value)
    (name,) = raw
    site = name.replace("-", "_")
    with pytest.raises(ConfigError, match=f"{site} = .* is invalid: it must be"):
        ModelvisConfig.check_setting(site, _typed(raw[name]))


def _typed(text: str) -> object:
    """The value a site would write for the option text ``text``."""
    try:
        return int(text)
    except ValueError:
        return text
