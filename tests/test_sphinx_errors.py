"""Failing, hanging and crashing snippets in real Sphinx builds: a warning at the right line, the build goes on."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sphinx
from conftest import ROOTS, Build, build_sphinx
from sphinx.errors import ConfigError as SphinxConfigError
from sphinx.errors import ExtensionError, SphinxError
from sphinx_html import figure_by_name, figure_lines

from sphinx_modelvis.sphinx import ModelvisBuildError


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Build:
    return build_sphinx("errors", tmp_path_factory.mktemp("errors") / "src", "html")


def warning_at(build: Build, page: str, line: int, subtype: str) -> str:
    """The one warning reported at ``page:line`` with ``subtype``, with its traceback lines."""
    pattern = rf"^\S*/{re.escape(page)}:{line}: WARNING: modelvis: (?:(?!^\S+: WARNING).)*\[modelvis\.{subtype}\]$"
    found = re.findall(pattern, build.warnings, flags=re.M | re.S)
    assert len(found) == 1, build.warnings
    return str(found[0])


def test_a_raising_snippet_is_reported_at_its_docs_line_with_its_own_traceback(built: Build) -> None:
    warning = warning_at(built, "index.rst", 20, "snippet")
    assert "ZeroDivisionError: division by zero" in warning
    # The snippet's own frames, named by the page and its lines; none of sphinx-modelvis's.
    assert 'File "index.rst", line 21, in <module>\n    helper(x)' in warning
    assert 'File "index.rst", line 20, in helper\n    return value / 0' in warning
    assert "sphinx_modelvis" not in warning


def test_myst_pages_report_their_own_lines(built: Build) -> None:
    warning = warning_at(built, "failing_md.md", 8, "snippet")
    assert 'File "failing_md.md", line 8, in <module>\n    b[a + 5]' in warning
    assert "IndexError: list index out of range" in warning
    syntax = warning_at(built, "failing_md.md", 14, "snippet")
    assert 'File "failing_md.md", line 14' in syntax and "SyntaxError" in syntax


def test_nothing_to_show_is_a_clear_warning(built: Build) -> None:
    assert "`3 + 4` is an int, not a torch.nn.Module" in warning_at(built, "index.rst", 28, "not-a-module")
    assert "printed nothing and bound no torch.nn.Module" in warning_at(built, "index.rst", 34, "not-a-module")


def test_the_page_builds_with_an_error_box_and_goes_on(built: Build) -> None:
    soup = built.soup("index")
    boxes = soup.select("div.modelvis-error")
    assert len(boxes) == 3
    first = boxes[0]
    assert "raised an exception" in first.get_text()
    assert "index.rst:20: the snippet raised ZeroDivisionError" in first.get_text()
    assert "helper(x)" in first.select_one("pre").get_text()
    # The namespace survives the failure: the next figure shows the module defined before it.
    assert figure_lines(figure_by_name(soup, "after"))[0].startswith("root weight:[2, 2]")


def test_a_hung_snippet_is_stopped_and_a_crash_replaced_and_the_page_goes_on(built: Build) -> None:
    hang = warning_at(built, "lost.rst", 16, "timeout")
    assert "ran for more than 3 s and was stopped" in hang
    assert 'File "lost.rst", line 16 in <module>' in hang  # where it was when it was stopped
    crash = warning_at(built, "lost.rst", 24, "crash")
    assert "exited with status 7" in crash

    # Each later figure reran the page's earlier snippets in a new worker (without the one that was lost).
    assert len(re.findall(r"lost\.rst:7 \.\.\. [\d.]+ s \(replayed\)", built.status)) == 2
    soup = built.soup("lost")
    for name in ("after_hang", "after_crash"):
        assert figure_lines(figure_by_name(soup, name))[1].startswith("    0 (Linear)")
    assert built.stats.worker_starts == 6, "one a page (4), and one after the hang and the crash"


def test_snippets_import_modules_next_to_their_page(built: Build) -> None:
    # The build runs from the repository's folder, not the page's: the page's folder is on sys.path all the same.
    assert Path.cwd() != built.app.srcdir
    assert figure_lines(figure_by_name(built.soup("more"), "imported")) == ["imported from the page's folder"]


def test_a_failing_argument_is_reported_at_the_directive_line(built: Build) -> None:
    warning = warning_at(built, "more.rst", 12, "snippet")
    assert "NameError: name 'undefined_name' is not defined" in warning
    assert 'File "more.rst", line 12, in <module>\n    undefined_name' in warning
    assert "`z + 4` is an int, not a torch.nn.Module" in warning_at(built, "more.rst", 17, "not-a-module")


def test_a_keyboard_interrupt_from_the_snippet_is_the_snippet_s_error(built: Build) -> None:
    warning = warning_at(built, "more.rst", 26, "snippet")
    assert "the snippet raised KeyboardInterrupt: stop here" in warning
    assert 'File "more.rst", line 26, in <module>' in warning and "sphinx_modelvis" not in warning


def test_a_worker_that_dies_with_a_forked_child_alive_is_a_crash_and_the_child_is_killed(built: Build) -> None:
    crash = warning_at(built, "more.rst", 38, "crash")
    assert "exited with status 3" in crash  # at once, not after the figure's 120 s timeout
    child = int((Path(built.app.srcdir) / "forked.pid").read_text())
    status = Path(f"/proc/{child}/status")
    assert not status.exists() or "State:\tZ" in status.read_text(), "the snippet's child outlived its worker"


def test_an_unwritable_cache_is_a_warning_and_the_figures_are_drawn(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text('extensions = ["sphinx_modelvis"]\n')
    (src / "cache").write_text("a file where the cache folder should be\n")
    (src / "index.rst").write_text(
        "Page\n====\n\n.. modelvis::\n\n   print('drawn')\n\n.. modelvis::\n\n   print('too')\n"
    )
    build = build_sphinx("errors", src, modelvis_cache_dir="cache")
    assert build.warnings.count("cannot write the figure cache") == 1 and "[modelvis.cache]" in build.warnings
    figures = build.soup("index").select("div.modelvis-figure")
    assert [figure_lines(figure) for figure in figures] == [["drawn"], ["too"]]


def test_warnings_can_be_silenced_by_subtype(tmp_path: Path) -> None:
    build = build_sphinx(
        "errors", tmp_path / "src", suppress_warnings=["modelvis.not-a-module", "modelvis.timeout", "modelvis.crash"]
    )
    assert "not-a-module" not in build.warnings and "modelvis.timeout" not in build.warnings
    assert "[modelvis.snippet]" in build.warnings


def test_dash_w_fails_the_build_and_on_error_raise_stops_it(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text('extensions = ["sphinx_modelvis"]\n')
    (src / "index.rst").write_text("Page\n====\n\n.. modelvis::\n\n   print('ok')\n   1 / 0\n")
    command = [sys.executable, "-m", "sphinx", "-q", "-b", "html", str(src), str(tmp_path / "out")]
    relaxed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert relaxed.returncode == 0 and "index.rst:7: WARNING: modelvis" in relaxed.stderr
    strict = subprocess.run([*command, "-W", "-E"], capture_output=True, text=True, timeout=300)
    assert strict.returncode != 0 and "index.rst:7: WARNING: modelvis" in strict.stderr
    # Incremental too: a page with a failed figure is read again by the next build until it passes.
    again = subprocess.run([*command, "-W"], capture_output=True, text=True, timeout=300)
    assert again.returncode != 0 and "index.rst:7: WARNING: modelvis" in again.stderr

    with pytest.raises(ModelvisBuildError, match=r"index\.rst:7: the snippet raised ZeroDivisionError"):
        build_sphinx("errors", src, modelvis_on_error="raise")


def test_a_failing_pre_code_is_reported(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text((ROOTS / "test-errors" / "conf.py").read_text())
    (src / "index.rst").write_text("Page\n====\n\n.. modelvis::\n\n   print('ok')\n")
    build = build_sphinx("errors", src, modelvis_pre_code="import not_a_module_anywhere")
    assert "ModuleNotFoundError" in build.warnings and "[modelvis.pre-code]" in build.warnings


# -- errors that end a build: ours, in Sphinx's own kinds (a configuration error, a build error) ---------------

#: A bad value, and what the build says of it (``modelvis_columns`` is laid out to at least 20 characters).
BAD_VALUE = ("modelvis_columns", 3, "modelvis_columns = 3 is invalid: it must be at least 20")


@pytest.mark.sphinx("html", testroot="raise", confoverrides={BAD_VALUE[0]: BAD_VALUE[1]})
def test_a_bad_config_value_is_a_sphinx_configuration_error_in_our_words(app_params: Any, make_app: Any) -> None:
    args, kwargs = app_params
    with pytest.raises(SphinxConfigError) as caught:
        make_app(*args, **kwargs)
    assert str(caught.value) == BAD_VALUE[2]
    assert caught.value.category == "Configuration error"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no chained traceback of ours


@pytest.mark.sphinx("html", testroot="raise", confoverrides={"modelvis_on_error": "raise"})
def test_on_error_raise_ends_the_build_with_a_modelvis_error_naming_the_line(app: Any) -> None:
    with pytest.raises(SphinxError) as caught:
        app.build()
    error = caught.value
    assert isinstance(error, ModelvisBuildError) and not isinstance(error, ExtensionError)  # not wrapped by Sphinx
    assert error.category == "modelvis error"
    message = str(error)
    assert message.startswith(f"{Path(app.srcdir, 'index.rst')}:9: the snippet raised ZeroDivisionError")
    assert 'File "index.rst", line 9, in <module>\n    1 / 0' in message and "sphinx_modelvis" not in message


def _sphinx_build(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """``sphinx-build`` of the raise root, as a user runs it."""
    src = tmp_path / "src"
    shutil.copytree(ROOTS / "test-raise", src)
    command = [sys.executable, "-m", "sphinx", "-q", "-b", "html", *options, str(src), str(tmp_path / "out")]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module", params=["config", "raise"])
def user_error(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Any]:
    """What ``sphinx-build`` does with a bad ``modelvis_*`` value, or with a failing figure under ``on_error = raise``:
    the error's category and our message, and the finished command."""
    tmp_path = tmp_path_factory.mktemp(request.param)
    if request.param == "config":
        done = _sphinx_build(tmp_path, "-D", f"{BAD_VALUE[0]}={BAD_VALUE[1]}")
        return "Configuration error", BAD_VALUE[2], done
    done = _sphinx_build(tmp_path, "-D", "modelvis_on_error=raise")
    return "modelvis error", "index.rst:9: the snippet raised ZeroDivisionError: division by zero", done


def test_sphinx_build_ends_a_user_error_with_our_message(user_error: tuple[str, str, Any]) -> None:
    category, message, done = user_error
    assert done.returncode == 2
    assert category in done.stderr and message in done.stderr, done.stderr


def test_the_sphinx_guide_says_what_sphinx_build_prints_for_a_user_error(user_error: tuple[str, str, Any]) -> None:
    """The guide's sentence against what this Sphinx printed: our message under Sphinx's heading, and, where
    Sphinx wraps it in its crash report, the guide says so and where the message is."""
    category, message, done = user_error
    guide = " ".join((ROOTS.parents[1] / "docs" / "guides" / "sphinx.md").read_text().split())
    assert f"`{category}!`" in guide and f"{category}!" in done.stderr
    if "please open an issue" in done.stderr:
        assert "Sphinx 8.2 and later print every error that ends a build inside a crash report" in guide
        assert "sphinx-doc/sphinx#14543" in guide
        assert "Our message ends the report's `Traceback` section, after the error's class name." in guide
        traceback = done.stderr.split("\nTraceback\n=========\n", 1)[1].split("\nThe full traceback", 1)[0]
        ours = rf"^    sphinx_modelvis\.[\w.]+Error: \S*{re.escape(message)}"
        assert re.search(ours, traceback, flags=re.M), traceback
        assert "sphinx_modelvis" not in traceback.split(message, 1)[1], "nothing of ours after the message"


@pytest.mark.compat
@pytest.mark.xfail(
    sphinx.version_info[:2] >= (8, 2),
    reason="Sphinx 8.2+ reports every exception that ends a build, its own ConfigError and ExtensionError "
    "included, as a crash to report to Sphinx (sphinx-doc/sphinx#14543)",
    strict=True,
)
def test_sphinx_build_reports_a_user_error_without_a_crash_report(user_error: tuple[str, str, Any]) -> None:
    category, message, done = user_error
    assert f"{category}:\n" in done.stderr and message in done.stderr
    for crash in ("please open an issue", "Exception occurred", "The full traceback", "Versions\n"):
        assert crash not in done.stderr, done.stderr
