"""A figure never outlives the code it shows: what its snippet depended on decides when it runs again.

Each test builds a real site (``sphinx-build`` in a subprocess, as a user runs it, or MkDocs), changes one thing
the snippet depends on, builds again and reads the figure; the log says why each figure ran (``-v``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from processes import mkdocs_serve, served

MODULE = """\
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.first_layer = nn.Linear(2, 2)
"""
GAINED = MODULE + "        self.gained_layer = nn.Linear(2, 3)\n"
PAGE = """\
Model
=====

.. modelvis::

   import mylib
   model = mylib.Net()
"""
#: Runs ``sphinx-build`` as the command line does, then says whether the build imported torch.
BUILD = """\
import sys
from sphinx.cmd.build import main
status = main(sys.argv[1:])
print("modelvis-test: torch imported:", "torch" in sys.modules)
worker = ("client", "steps", "template", "processes", "wire", "checkpoints", "worker", "snippet")
loaded = sorted(name for name in sys.modules if name in {f"sphinx_modelvis.execution.{part}" for part in worker})
print("modelvis-test: worker modules imported:", ", ".join(loaded) or "none")
sys.exit(status)
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def sphinx_project(root: Path, page: str = PAGE, conf: str = "") -> Path:
    """A Sphinx project in ``root/docs`` with ``mylib.py`` next to its page."""
    docs = root / "docs"
    write(docs / "conf.py", 'extensions = ["sphinx_modelvis"]\nexclude_patterns = ["_build"]\n' + conf)
    write(docs / "index.rst", page)
    write(docs / "mylib.py", MODULE)
    return docs


def _environment(values: dict[str, str] | None) -> dict[str, str]:
    """This process's environment without the tests' variable, then ``values``."""
    base = {name: value for name, value in os.environ.items() if name != "MODELVIS_TEST_SIZE"}
    return {**base, **(values or {})}


def sphinx(docs: Path, out: Path, *options: str, environment: dict[str, str] | None = None) -> str:
    """Build ``docs`` into ``out`` with ``sphinx-build -v``; its whole log."""
    script = docs.parent / "build.py"
    script.write_text(BUILD, encoding="utf-8")
    command = [sys.executable, str(script), "-v", "--no-color", "-b", "html", *options, str(docs), str(out)]
    env = _environment(environment)
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=docs.parent, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def ran(log: str) -> list[str]:
    """The ``ran:`` lines of a build log, from the page's name on."""
    return [line[line.index("modelvis: ") + 10 :] for line in log.splitlines() if ": ran: " in line]


def summary(log: str) -> str:
    """The build's count of figures (without what it says of the cache's size)."""
    (line,) = [line for line in log.splitlines() if "figure(s) from the cache" in line]
    return line[line.index("modelvis: ") :].split("; cache: ")[0]


# -- the seven rows of issue 17 ------------------------------------------------------------------


def test_an_incremental_build_reads_the_page_again_when_a_module_next_to_it_changes(tmp_path: Path) -> None:
    docs = sphinx_project(tmp_path)
    first = sphinx(docs, tmp_path / "out")
    assert "gained_layer" not in (tmp_path / "out" / "index.html").read_text()
    assert ran(first) == ["index.rst:6: ran: new"]
    write(docs / "mylib.py", GAINED)
    again = sphinx(docs, tmp_path / "out")  # no -E: Sphinx itself must see that the page is out of date
    assert "gained_layer" in (tmp_path / "out" / "index.html").read_text()
    assert ran(again) == ["index.rst:6: ran: mylib.py changed"]


def test_a_fresh_environment_with_the_cache_kept_runs_what_changed(tmp_path: Path) -> None:
    docs = sphinx_project(tmp_path)
    sphinx(docs, tmp_path / "out")
    write(docs / "mylib.py", GAINED)
    again = sphinx(docs, tmp_path / "out", "-E")
    assert "gained_layer" in (tmp_path / "out" / "index.html").read_text()
    assert ran(again) == ["index.rst:6: ran: mylib.py changed"]
    assert summary(again) == "modelvis: 0 figure(s) from the cache, 1 ran, 0 failed"


def test_a_cache_restored_into_a_new_checkout_is_used_until_a_dependency_changes(tmp_path: Path) -> None:
    # CI: a new checkout (another folder, new mtimes) with the cache folder restored from the last run.
    docs = sphinx_project(tmp_path / "run1")
    sphinx(docs, tmp_path / "run1" / "public")
    checkout = tmp_path / "run2"
    shutil.copytree(tmp_path / "run1" / "docs", checkout / "docs", copy_function=shutil.copy)  # new mtimes
    restored = sphinx(checkout / "docs", checkout / "public")
    assert ran(restored) == [] and summary(restored) == "modelvis: 1 figure(s) from the cache, 0 ran, 0 failed"
    assert "modelvis-test: torch imported: False" in restored
    write(checkout / "docs" / "mylib.py", GAINED)
    shutil.rmtree(checkout / "public")
    changed = sphinx(checkout / "docs", checkout / "public")
    assert "gained_layer" in (checkout / "public" / "index.html").read_text()
    assert ran(changed) == ["index.rst:6: ran: mylib.py changed"]


def test_a_data_file_the_snippet_reads_is_a_dependency(tmp_path: Path) -> None:
    page = PAGE.replace(
        "   import mylib\n   model = mylib.Net()\n",
        "   import json\n   from torch import nn\n\n"
        "   spec = json.load(open('spec.json'))\n   model = nn.Linear(spec['inputs'], spec['outputs'])\n",
    )
    docs = sphinx_project(tmp_path, page)
    write(docs / "spec.json", json.dumps({"inputs": 3, "outputs": 4}))
    sphinx(docs, tmp_path / "out")
    assert "weight:[4, 3]" in (tmp_path / "out" / "index.html").read_text()
    write(docs / "spec.json", json.dumps({"inputs": 5, "outputs": 4}))
    again = sphinx(docs, tmp_path / "out")
    html = (tmp_path / "out" / "index.html").read_text()
    assert "weight:[4, 5]" in html and "weight:[4, 3]" not in html
    assert ran(again) == ["index.rst:6: ran: spec.json changed"]


def fake_distribution(folder: Path, version: str) -> None:
    """``fakedist`` at ``version`` installed in ``folder``: its ``.dist-info`` and its module ``fakemod``."""
    for old in folder.glob("fakedist-*.dist-info"):
        shutil.rmtree(old)
    info = folder / f"fakedist-{version}.dist-info"
    write(info / "METADATA", f"Metadata-Version: 2.1\nName: fakedist\nVersion: {version}\n")
    write(info / "top_level.txt", "fakemod\n")
    write(info / "RECORD", f"fakemod.py,,\nfakedist-{version}.dist-info/METADATA,,\n")
    if not (folder / "fakemod.py").exists():
        write(folder / "fakemod.py", "from torch import nn\n\n\ndef model():\n    return nn.Linear(2, 2)\n")


def test_an_upgraded_distribution_runs_the_figures_that_import_it(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    fake_distribution(site, "1.0")
    conf = f"import sys\nsys.path.insert(0, {str(site)!r})\n"
    page = PAGE.replace("   import mylib\n   model = mylib.Net()\n", "   import fakemod\n   model = fakemod.model()\n")
    docs = sphinx_project(tmp_path, page, conf)
    sphinx(docs, tmp_path / "out")
    unchanged = sphinx(docs, tmp_path / "out", "-E")
    assert ran(unchanged) == []
    fake_distribution(site, "2.0")  # its module's file stays as it was: only the version says it changed
    upgraded = sphinx(docs, tmp_path / "out")  # incremental: the page is read again for its new version
    assert ran(upgraded) == ["index.rst:6: ran: fakedist 1.0 -> 2.0"]


def reinstall_with_hashes(folder: Path, module: str) -> None:
    """``fakedist`` 1.0 installed in ``folder`` as pip installs it, its RECORD listing each file's hash."""
    fake_distribution(folder, "1.0")
    write(folder / "fakemod.py", module)
    digest = base64.urlsafe_b64encode(hashlib.sha256(module.encode()).digest()).rstrip(b"=").decode()
    record = f"fakemod.py,sha256={digest},{len(module)}\nfakedist-1.0.dist-info/METADATA,,\n"
    write(folder / "fakedist-1.0.dist-info" / "RECORD", record)


def test_a_distribution_reinstalled_at_the_same_version_with_other_files_runs_its_figures(tmp_path: Path) -> None:
    # `pip install .` of the library a site documents, its version string not bumped: the version alone would
    # keep the old figure; the hashes pip records say the files changed.
    site = tmp_path / "site-packages"
    linear = "from torch import nn\n\n\ndef model():\n    return nn.Linear(2, {size})\n"
    reinstall_with_hashes(site, linear.format(size=2))
    conf = f"import sys\nsys.path.insert(0, {str(site)!r})\n"
    page = PAGE.replace("   import mylib\n   model = mylib.Net()\n", "   import fakemod\n   model = fakemod.model()\n")
    docs = sphinx_project(tmp_path, page, conf)
    sphinx(docs, tmp_path / "out")
    reinstall_with_hashes(site, linear.format(size=7))
    again = sphinx(docs, tmp_path / "out")  # incremental: the page is read again
    assert ran(again) == ["index.rst:6: ran: fakedist 1.0 was reinstalled with other files"]
    html = (tmp_path / "out" / "index.html").read_text()
    assert "weight:[7, 2]" in html and "weight:[2, 2]" not in html


def test_the_repository_s_package_with_setuptools_egg_info_in_its_source_tree_counts_by_its_files(
    tmp_path: Path,
) -> None:
    # The in-repo layout: conf.py puts ../src on sys.path, where `pip install -e .`, `python -m build` or
    # `setup.py egg_info` left src/mylib.egg-info. That metadata describes the source tree, not an installed copy:
    # counted by its version, the library's figures would never change until its version string did.
    src = tmp_path / "src"
    write(src / "mylib" / "__init__.py", MODULE)
    write(src / "mylib.egg-info" / "PKG-INFO", "Metadata-Version: 2.1\nName: mylib\nVersion: 0.1\n")
    write(src / "mylib.egg-info" / "top_level.txt", "mylib\n")
    conf = f"import sys\nsys.path.insert(0, {str(src)!r})\n"
    docs = sphinx_project(tmp_path, conf=conf)
    (docs / "mylib.py").unlink()
    sphinx(docs, tmp_path / "out")
    assert "first_layer" in (tmp_path / "out" / "index.html").read_text()
    write(src / "mylib" / "__init__.py", GAINED)
    again = sphinx(docs, tmp_path / "out")  # incremental: the page noted the package's file
    assert "gained_layer" in (tmp_path / "out" / "index.html").read_text()
    assert ran(again) == [f"index.rst:6: ran: {src / 'mylib' / '__init__.py'} changed"]


def test_two_pages_in_two_folders_each_show_their_own_module(tmp_path: Path) -> None:
    page = PAGE.replace("import mylib\n   model = mylib.Net()", "from model_def import Net\n   model = Net()")
    docs = sphinx_project(tmp_path, "Home\n====\n\n.. toctree::\n\n   a/page\n   b/page\n")
    for folder, layer in (("a", "alpha_layer"), ("b", "beta_layer")):
        write(docs / folder / "page.rst", page)
        write(docs / folder / "model_def.py", MODULE.replace("first_layer", layer))
    log = sphinx(docs, tmp_path / "out")
    first = (tmp_path / "out" / "a" / "page.html").read_text()
    second = (tmp_path / "out" / "b" / "page.html").read_text()
    assert "alpha_layer" in first and "beta_layer" not in first
    assert "beta_layer" in second and "alpha_layer" not in second
    assert sorted(ran(log)) == ["a/page.rst:6: ran: new", "b/page.rst:6: ran: new"]


# -- what else changes a figure, and what does not ----------------------------------------------------


def test_a_deleted_dependency_is_a_miss_that_runs_the_figure_not_a_crash(tmp_path: Path) -> None:
    page = PAGE.replace(
        "   import mylib\n   model = mylib.Net()\n",
        "   import os\n\n   print(open('notes.txt').read() if os.path.exists('notes.txt') else 'no notes')\n",
    )
    docs = sphinx_project(tmp_path, page)
    write(docs / "notes.txt", "some notes\n")
    sphinx(docs, tmp_path / "out")
    assert "some notes" in (tmp_path / "out" / "index.html").read_text()
    (docs / "notes.txt").unlink()
    again = sphinx(docs, tmp_path / "out", "-E")
    assert "no notes" in (tmp_path / "out" / "index.html").read_text()
    assert ran(again) == ["index.rst:6: ran: notes.txt is gone or unreadable"]


def test_nothing_changed_every_figure_is_a_hit_and_no_worker_starts(tmp_path: Path) -> None:
    page = PAGE + "\n.. modelvis::\n\n   import json\n\n   print(json.load(open('spec.json')))\n"
    docs = sphinx_project(tmp_path, page)
    write(docs / "spec.json", "[1, 2]")
    first = sphinx(docs, tmp_path / "out")
    assert summary(first) == "modelvis: 0 figure(s) from the cache, 2 ran, 0 failed"
    again = sphinx(docs, tmp_path / "out", "-E")
    assert ran(again) == []
    assert summary(again) == "modelvis: 2 figure(s) from the cache, 0 ran, 0 failed"
    assert "worker process" not in again
    assert "modelvis-test: torch imported: False" in again
    assert "modelvis-test: worker modules imported: none" in again, "the worker machinery is imported when used"
    entries = [json.loads(path.read_text()) for path in (docs / "_build" / ".modelvis-cache").glob("*/*.json")]
    assert sorted(sorted(entry["depends"]["files"]) for entry in entries) == [["mylib.py"], ["mylib.py", "spec.json"]]
    assert all(entry["depends"]["distributions"]["torch"] for entry in entries)


def test_the_build_s_count_takes_in_the_figures_of_parallel_readers(tmp_path: Path) -> None:
    """Under ``-j`` the pages are read in forked processes; the summary counts their figures too."""
    pages = "".join(f"   page{number}\n" for number in range(6))
    docs = sphinx_project(tmp_path, f"Model\n=====\n\n.. toctree::\n\n{pages}")
    for number in range(6):
        page = PAGE.replace("Model\n=====", f"Page {number}\n======").replace("Net()", f"Net()  # page {number}")
        write(docs / f"page{number}.rst", page)
    first = sphinx(docs, tmp_path / "out", "-j", "2")
    assert "reading sources... [ 33%] index .. page1" in first, "the pages were read in parallel, in chunks"
    assert summary(first) == "modelvis: 0 figure(s) from the cache, 6 ran, 0 failed"
    again = sphinx(docs, tmp_path / "out", "-j", "2", "-E")
    assert summary(again) == "modelvis: 6 figure(s) from the cache, 0 ran, 0 failed"


def test_a_page_edit_says_the_code_changed(tmp_path: Path) -> None:
    docs = sphinx_project(tmp_path)
    sphinx(docs, tmp_path / "out")
    write(docs / "index.rst", PAGE.replace("model = mylib.Net()", "model = mylib.Net().eval()"))
    assert ran(sphinx(docs, tmp_path / "out")) == ["index.rst:6: ran: code changed"]


# -- MkDocs -----------------------------------------------------------------------------------------

MKDOCS_PAGE = "# Model\n\n```{modelvis}\nimport mylib\nmodel = mylib.Net()\n```\n"


def mkdocs_project(root: Path) -> Path:
    write(root / "mkdocs.yml", "site_name: deps\ntheme: mkdocs\nplugins:\n  - modelvis:\n      timeout: 120\n")
    write(root / "docs" / "index.md", MKDOCS_PAGE)
    write(root / "docs" / "mylib.py", MODULE)
    return root


def mkdocs_build(project: Path, environment: dict[str, str] | None = None) -> str:
    command = [sys.executable, "-m", "mkdocs", "build", "--verbose"]
    env = _environment(environment)
    done = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_mkdocs_runs_a_page_again_when_the_module_next_to_it_changes(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    project = mkdocs_project(tmp_path)
    first = mkdocs_build(project)
    assert ran(mkdocs_build(project)) == []
    assert ran(first) == ["index.md:4: ran: new"]
    write(project / "docs" / "mylib.py", GAINED)
    again = mkdocs_build(project)
    assert "gained_layer" in (project / "site" / "index.html").read_text()
    assert ran(again) == ["index.md:4: ran: docs/mylib.py changed"]


def test_mkdocs_serve_watches_the_module_and_shows_the_new_model(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    project = mkdocs_project(tmp_path)
    # A file outside the docs folder, which `mkdocs serve` watches only because the figure read it.
    write(project / "width.json", "2")
    write(project / "docs" / "index.md", MKDOCS_PAGE.replace("mylib.Net()", "mylib.Net(open('../width.json').read())"))
    write(project / "docs" / "mylib.py", sized(MODULE))
    log = tmp_path / "serve.log"
    with mkdocs_serve(project, log) as (address, server):
        assert "weight:[2, 2]" in served(address, lambda page: "first_layer" in page, server)
        write(project / "docs" / "mylib.py", sized(GAINED))
        assert "weight:[3, 2]" in served(address, lambda page: "gained_layer" in page, server)
        write(project / "width.json", "7")
        assert "weight:[7, 2]" in served(address, lambda page: "weight:[7, 2]" in page, server)
    assert "index.md:4 ... " in log.read_text()


def test_mkdocs_serve_runs_an_unchanged_page_again_when_a_distribution_it_imported_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `mkdocs serve` reuses a page whose Markdown and local files are unchanged; a rebuild started by an edit of
    # another page must still see that a distribution the page's figure imported was upgraded meanwhile.
    pytest.importorskip("mkdocs")
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    monkeypatch.setenv("NO_MKDOCS_2_WARNING", "1")
    site = tmp_path / "site-packages"
    fake_distribution(site, "1.0")
    monkeypatch.syspath_prepend(str(site))
    project = mkdocs_project(tmp_path / "project")
    write(
        project / "docs" / "index.md",
        MKDOCS_PAGE.replace("mylib\nmodel = mylib.Net()", "fakemod\nmodel = fakemod.model()"),
    )
    write(project / "docs" / "other.md", "# Other\n\nSome text.\n")

    def served() -> tuple[Any, str]:
        config = load_config(str(project / "mkdocs.yml"), site_dir=str(project / "site"))
        build(config)
        return config.plugins["modelvis"], (project / "site" / "index.html").read_text()

    plugin, first = served()
    assert "weight:[2, 2]" in first
    plugin.on_startup(command="serve", dirty=False)
    try:
        served()  # the server's first build: the page is remembered
        fake_distribution(site, "2.0")
        write(site / "fakemod.py", "from torch import nn\n\n\ndef model():\n    return nn.Linear(2, 5)\n")
        write(project / "docs" / "other.md", "# Other\n\nEdited text.\n")  # what starts the rebuild
        _, again = served()
        assert "weight:[5, 2]" in again and "weight:[2, 2]" not in again
    finally:
        plugin.on_shutdown()


def sized(module: str) -> str:
    """``module`` whose ``Net`` takes the width of its first layer."""
    return module.replace("(self)", "(self, width)").replace("nn.Linear(2, 2)", "nn.Linear(2, int(width))")


# -- declared dependencies --------------------------------------------------------------------------

#: A snippet whose inputs its run cannot show: a file a subprocess reads, an environment variable.
HIDDEN = """\
import os
import subprocess
from torch import nn

width = int(subprocess.check_output(["cat", "width.txt"]))
model = nn.Linear(width, int(os.environ.get("MODELVIS_TEST_SIZE", "1")))
"""


def test_depends_on_a_file_and_an_environment_variable(tmp_path: Path) -> None:
    page = "Model\n=====\n\n.. modelvis::\n   :depends: width.txt, env:MODELVIS_TEST_SIZE\n\n"
    docs = sphinx_project(tmp_path, page + textwrap.indent(HIDDEN, "   "))
    write(docs / "width.txt", "3")
    sphinx(docs, tmp_path / "out", environment={"MODELVIS_TEST_SIZE": "4"})
    assert "weight:[4, 3]" in (tmp_path / "out" / "index.html").read_text()
    write(docs / "width.txt", "5")
    again = sphinx(docs, tmp_path / "out", environment={"MODELVIS_TEST_SIZE": "4"})  # incremental: noted
    assert "weight:[4, 5]" in (tmp_path / "out" / "index.html").read_text()
    assert ran(again) == ["index.rst:7: ran: width.txt changed"]
    same = sphinx(docs, tmp_path / "out", "-E", environment={"MODELVIS_TEST_SIZE": "4"})
    assert ran(same) == []
    other = sphinx(docs, tmp_path / "out", environment={"MODELVIS_TEST_SIZE": "6"})  # incremental too
    assert "weight:[6, 5]" in (tmp_path / "out" / "index.html").read_text()
    assert ran(other) == ["index.rst:7: ran: env:MODELVIS_TEST_SIZE changed"]


def test_the_site_setting_declares_what_every_figure_depends_on(tmp_path: Path) -> None:
    # A MyST page, the site's modelvis_depends: a glob relative to conf.py's folder, and a variable.
    conf = 'extensions += ["myst_parser"]\nmodelvis_depends = "data/*.txt, env:MODELVIS_TEST_SIZE"\n'
    docs = sphinx_project(tmp_path, "Home\n====\n\n.. toctree::\n\n   page\n", conf)
    write(docs / "page.md", "# Page\n\n```{modelvis}\n" + HIDDEN.replace("width.txt", "data/width.txt") + "```\n")
    write(docs / "data" / "width.txt", "3")
    sphinx(docs, tmp_path / "out", environment={"MODELVIS_TEST_SIZE": "4"})
    write(docs / "data" / "more.txt", "another file the glob matches")
    again = sphinx(docs, tmp_path / "out", environment={"MODELVIS_TEST_SIZE": "4"})  # incremental
    assert ran(again) == ["page.md:4: ran: data/*.txt matches other files"]
    other = sphinx(docs, tmp_path / "out", "-E", environment={"MODELVIS_TEST_SIZE": "2"})
    assert "weight:[2, 3]" in (tmp_path / "out" / "page.html").read_text()
    assert ran(other) == ["page.md:4: ran: env:MODELVIS_TEST_SIZE changed"]


def test_mkdocs_depends_option_and_setting(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    project = mkdocs_project(tmp_path)
    write(project / "mkdocs.yml", (project / "mkdocs.yml").read_text() + "      depends: env:MODELVIS_TEST_SIZE\n")
    fence = "```{modelvis}\n:depends: width.txt\n" + HIDDEN + "```\n"
    write(project / "docs" / "index.md", "# Model\n\n" + fence)
    write(project / "docs" / "width.txt", "3")
    mkdocs_build(project, environment={"MODELVIS_TEST_SIZE": "4"})
    write(project / "docs" / "width.txt", "5")
    changed_file = mkdocs_build(project, environment={"MODELVIS_TEST_SIZE": "4"})
    assert "weight:[4, 5]" in (project / "site" / "index.html").read_text()
    assert ran(changed_file) == ["index.md:5: ran: docs/width.txt changed"]
    changed_variable = mkdocs_build(project, environment={"MODELVIS_TEST_SIZE": "2"})
    assert "weight:[2, 5]" in (project / "site" / "index.html").read_text()
    assert ran(changed_variable) == ["index.md:5: ran: env:MODELVIS_TEST_SIZE changed"]


# -- the manifest, in this process --------------------------------------------------------------------


def test_a_manifest_is_checked_by_size_and_mtime_then_by_contents(tmp_path: Path) -> None:
    from sphinx_modelvis.execution.dependencies import file_state
    from sphinx_modelvis.execution.manifest import DependencyChecker

    module = write(tmp_path / "docs" / "mylib.py", MODULE)
    manifest = DependencyChecker(tmp_path).manifest({str(module): file_state(str(module))}, {}, [])
    assert list(manifest["files"]) == ["docs/mylib.py"], "kept relative to the site's folder"
    assert DependencyChecker(tmp_path).changed(manifest) == (None, False)
    os.utime(module, ns=(1, 1))  # a fresh checkout: new times, same contents
    assert DependencyChecker(tmp_path).changed(manifest) == (None, True), "a hit, worth rewriting"
    refreshed = DependencyChecker(tmp_path).refreshed(manifest)
    assert refreshed["files"]["docs/mylib.py"][1] == 1
    assert DependencyChecker(tmp_path).changed(refreshed) == (None, False)
    write(module, MODULE.replace("(2, 2)", "(2, 9)"))  # same size, new contents
    assert DependencyChecker(tmp_path).changed(manifest) == ("docs/mylib.py changed", False)
    module.unlink()
    assert DependencyChecker(tmp_path).changed(manifest) == ("docs/mylib.py is gone or unreadable", False)


def test_a_large_file_is_kept_by_its_size_and_mtime_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sphinx_modelvis.execution import dependencies
    from sphinx_modelvis.execution.manifest import DependencyChecker

    weights = write(tmp_path / "weights.bin", "0" * 100)
    monkeypatch.setattr(dependencies, "DIGEST_LIMIT", 10)  # weights.bin stands for a file of gigabytes
    state = dependencies.file_state(str(weights))
    assert state[2] == "", "not read: digesting model weights on every run would cost seconds"
    manifest = DependencyChecker(tmp_path).manifest({str(weights): state}, {}, [])
    assert DependencyChecker(tmp_path).changed(manifest) == (None, False)
    os.utime(weights, ns=(1, 1))
    assert DependencyChecker(tmp_path).changed(manifest) == ("weights.bin changed", False)


def test_bytecode_under_a_pycache_prefix_is_no_dependency(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # PYTHONPYCACHEPREFIX puts the .pyc files of a module next to the page in a folder of its own, not __pycache__:
    # they are the module's, read again from its source after a fresh checkout, never an input of the figure.
    from sphinx_modelvis.execution.dependencies import DependencyTracker

    write(tmp_path / "site" / "compiled.py", "VALUE = 1\n")
    monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path / "bytecode"))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    import compiled

    sys.modules.pop("compiled")
    assert list((tmp_path / "bytecode").rglob("compiled*.pyc")), "the bytecode is there to be read"
    tracker = DependencyTracker()
    tracker.start()
    try:
        with tracker.running():
            import compiled  # noqa: F401  (read from the bytecode)
        files, _distributions = tracker.dependencies()
    finally:
        sys.modules.pop("compiled", None)
    assert str(tmp_path / "site" / "compiled.py") in files
    assert not [path for path in files if path.startswith(str(tmp_path / "bytecode"))], "no bytecode"


def test_the_worker_records_namespace_packages_local_modules_and_files_read(tmp_path: Path) -> None:
    from sphinx_modelvis.execution.dependencies import DependencyTracker

    write(tmp_path / "nspkg" / "part.py", "VALUE = 1\n")  # a namespace package: no __init__.py
    write(tmp_path / "data.txt", "data\n")
    tracker = DependencyTracker()
    tracker.start()
    sys.path.insert(0, str(tmp_path))
    try:
        with tracker.running():
            import nspkg.part  # noqa: F401

            (tmp_path / "data.txt").read_text()
            (tmp_path / "output.txt").write_text("written by the snippet")
            (tmp_path / "output.txt").read_text()
        files, distributions = tracker.dependencies()
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("nspkg.part", "nspkg"):
            sys.modules.pop(name, None)
    assert {str(tmp_path / "nspkg" / "part.py"), str(tmp_path / "data.txt")} <= set(files)
    assert str(tmp_path / "output.txt") not in files, "a file the snippet wrote is its output, not an input"
    assert not any("sphinx_modelvis" in path for path in files), "the package's own modules are no dependency"
    assert distributions.get("pytest"), "an installed distribution counts by its version"
