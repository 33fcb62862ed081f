"""A template kept warm between an author's builds: reused by the next build, replaced when what it holds may be
stale (another Python, an upgraded distribution, another ``pre_code``, a crash), never showing changed code.

Each test runs ``sphinx-build`` (or ``sphinx-autobuild``, or ``mkdocs serve``) in a subprocess, as an author
does; the snippets print their parent's pid, which is the template's, and the log says what became of it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from processes import eventually, free_address, mkdocs_serve, served, stop
from sphinx_html import figure_by_name, figure_lines

from sphinx_modelvis.execution.link import TemplateLink
from sphinx_modelvis.execution.processes import alive
from sphinx_modelvis.execution.warm import warm_folder

#: A figure that says which template forked its worker, and what the code next to the page holds.
PAGE = """\
Page
====

.. modelvis::
   :name: report

   import os
   import mylib
   print("template", os.getppid())
   print("local", mylib.VALUE)
"""
CONF = 'extensions = ["sphinx_modelvis"]\nexclude_patterns = ["_build"]\nmodelvis_format = "html"\n'


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def project(root: Path, conf: str = "modelvis_keep_warm = 120\n", page: str = PAGE) -> Path:
    docs = root / "docs"
    write(docs / "conf.py", CONF + conf)
    write(docs / "index.rst", page)
    write(docs / "mylib.py", "VALUE = 'first'\n")
    return docs


def kept_link(docs: Path) -> TemplateLink:
    """The link a build of ``docs`` (default cache folder) uses to find its kept template."""
    return TemplateLink(keep_warm=1, cache_dir=docs / "_build" / ".modelvis-cache")


@pytest.fixture
def ended() -> Iterator[Callable[[TemplateLink], None]]:
    """Links whose kept templates the test ends when it is done (whatever happened)."""
    links: list[TemplateLink] = []
    yield links.append
    for link in links:
        link.end()


def sphinx(docs: Path, *options: str, environment: dict[str, str] | None = None) -> str:
    """Build ``docs`` into ``docs/../out`` with ``sphinx-build``; its whole log."""
    command = [sys.executable, "-m", "sphinx", "build", "--no-color", "-b", "html", *options, str(docs)]
    command.append(str(docs.parent / "out"))
    env = {**os.environ, **(environment or {})}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=docs.parent, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def shown(docs: Path) -> dict[str, str]:
    """What the figure ``report`` shows: ``{"template": pid, "local": value, ...}``."""
    soup = BeautifulSoup((docs.parent / "out" / "index.html").read_text(encoding="utf-8"), "html.parser")
    lines = [line.split(" ", 1) for line in figure_lines(figure_by_name(soup, "report")) if " " in line]
    return {key: value for key, value in lines}


def outcome(log: str) -> str:
    """What the build said of the kept template: ``started``, ``reused`` or ``restarted ...``."""
    (line,) = re.findall(r"modelvis: ((?:started|reused|restarted) [^\n]*)", log)
    return line


# -- reuse, and what makes a new one --------------------------------------------------------------------


def test_two_builds_with_keep_warm_reuse_one_template(tmp_path: Path, ended: Callable[[TemplateLink], None]) -> None:
    docs = project(tmp_path)
    ended(kept_link(docs))
    first = sphinx(docs)
    template = int(shown(docs)["template"])
    assert outcome(first).startswith(f"started a warm template process (pid {template}), kept 120 s idle")
    assert alive(template), "the template outlives the build that started it"
    assert kept_link(docs).pid() == template
    again = sphinx(docs, "-E", "-D", "modelvis_execute=always")
    assert outcome(again).startswith(f"reused the warm template process (pid {template})")
    assert shown(docs)["template"] == str(template)


def test_a_one_shot_build_leaves_no_process_and_no_folder(tmp_path: Path) -> None:
    # The template's command line: python -m sphinx_modelvis.execution.template FOLDER OWNER IDLE
    arguments = 'open(f"/proc/{os.getppid()}/cmdline").read().split(chr(0))'
    docs = project(tmp_path, conf="", page=PAGE + f'   print("folder", {arguments}[3])\n')
    log = sphinx(docs)
    assert "warm template" not in log
    figure = shown(docs)
    template = int(figure["template"])
    folder = figure["folder"]
    assert folder.startswith(os.path.join(os.path.dirname(folder), "modelvis-template-"))
    assert eventually(lambda: not alive(template)), "the template ends with the build"
    assert not Path(folder).exists()
    assert not warm_folder(docs / "_build" / ".modelvis-cache").exists()


def test_a_changed_pre_code_restarts_the_template(tmp_path: Path, ended: Callable[[TemplateLink], None]) -> None:
    docs = project(tmp_path)
    ended(kept_link(docs))
    sphinx(docs)
    before = int(shown(docs)["template"])
    write(docs / "conf.py", CONF + "modelvis_keep_warm = 120\nmodelvis_pre_code = 'import json'\n")
    log = sphinx(docs)
    after = int(shown(docs)["template"])
    assert after != before
    assert outcome(log) == f"restarted the warm template process (pid {after}; was {before}): pre_code changed"
    assert eventually(lambda: not alive(before)), "the old template ended"


def test_another_environment_restarts_the_template_whose_workers_would_inherit_its_own(
    tmp_path: Path, ended: Callable[[TemplateLink], None]
) -> None:
    docs = project(tmp_path, page=PAGE + '   print("size", os.environ["MODEL_SIZE"])\n')
    ended(kept_link(docs))
    sphinx(docs, environment={"MODEL_SIZE": "small"})
    before = shown(docs)
    sphinx(docs, "-E", "-D", "modelvis_execute=always", environment={"MODEL_SIZE": "small"})
    assert shown(docs)["template"] == before["template"], "the same environment: reused"
    log = sphinx(docs, "-E", "-D", "modelvis_execute=always", environment={"MODEL_SIZE": "large"})
    after = shown(docs)
    assert (before["size"], after["size"]) == ("small", "large")
    assert after["template"] != before["template"]
    assert outcome(log).endswith(": environment: MODEL_SIZE")


def test_a_killed_template_is_replaced_by_the_next_build(tmp_path: Path, ended: Callable[[TemplateLink], None]) -> None:
    docs = project(tmp_path)
    ended(kept_link(docs))
    sphinx(docs)
    before = int(shown(docs)["template"])
    os.kill(before, signal.SIGKILL)
    assert eventually(lambda: not alive(before))
    log = sphinx(docs, "-E", "-D", "modelvis_execute=always")
    after = int(shown(docs)["template"])
    assert after != before and alive(after)
    assert outcome(log) == (
        f"restarted the warm template process (pid {after}; was {before}): "
        "the template process had ended (crashed or killed)"
    )


def test_a_kept_template_exits_when_idle_and_takes_its_folder(tmp_path: Path) -> None:
    docs = project(tmp_path, conf="modelvis_keep_warm = 1\n")
    sphinx(docs)
    template = int(shown(docs)["template"])
    folder = warm_folder(docs / "_build" / ".modelvis-cache")
    assert folder.is_dir()
    assert eventually(lambda: not alive(template)), "idle for a second, it ends"
    assert eventually(lambda: not folder.exists())


def test_a_kept_template_exits_when_its_folder_is_removed(tmp_path: Path) -> None:
    docs = project(tmp_path)
    sphinx(docs)
    template = int(shown(docs)["template"])
    shutil.rmtree(warm_folder(docs / "_build" / ".modelvis-cache"))
    assert eventually(lambda: not alive(template))


def test_what_a_build_s_workers_imported_the_kept_template_imports_for_the_next_build(
    tmp_path: Path, ended: Callable[[TemplateLink], None]
) -> None:
    # Imported by a call, not an import line: only the worker's report of what it imported names it.
    lines = ["import importlib, sys", 'print("ahead", "wave" in sys.modules)', 'importlib.import_module("wave")']
    page = PAGE + "".join(f"   {line}\n" for line in lines)
    docs = project(tmp_path, page=page)
    ended(kept_link(docs))
    sphinx(docs)
    assert shown(docs)["ahead"] == "False"
    sphinx(docs, "-E", "-D", "modelvis_execute=always")
    assert shown(docs)["ahead"] == "True", "the template imported it after the first build, for this one"


def test_a_kept_template_ended_by_a_signal_takes_its_folder(tmp_path: Path) -> None:
    docs = project(tmp_path)
    sphinx(docs)
    template = int(shown(docs)["template"])
    os.kill(template, signal.SIGTERM)
    assert eventually(lambda: not alive(template))
    assert not warm_folder(docs / "_build" / ".modelvis-cache").exists()


# -- only this user's folder is used ----------------------------------------------------------------------


def test_a_folder_open_to_others_is_replaced_and_a_socket_planted_in_it_is_never_used(
    tmp_path: Path, ended: Callable[[TemplateLink], None]
) -> None:
    docs = project(tmp_path)
    ended(kept_link(docs))
    folder = warm_folder(docs / "_build" / ".modelvis-cache")
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    planted = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    planted.bind(str(folder / "template.sock"))
    planted.listen(8)
    planted.setblocking(False)
    try:
        log = sphinx(docs)
        with pytest.raises(BlockingIOError):
            planted.accept()  # nobody ever connected to it
    finally:
        planted.close()
    assert outcome(log).startswith("started a warm template process")
    assert folder.stat().st_mode & 0o777 == 0o700
    assert int(shown(docs)["template"]) == kept_link(docs).pid()


@pytest.mark.skipif(os.getuid() != 0, reason="making a folder owned by another user needs root")
def test_a_folder_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    docs = project(tmp_path)
    folder = warm_folder(docs / "_build" / ".modelvis-cache")
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)
    try:
        log = sphinx(docs)
        assert f"no template process to fork workers from (UnsafeFolder: {folder} belongs to user 65534" in log
        assert int(shown(docs)["template"]) != 65534 and os.listdir(folder) == []
        assert shown(docs)["local"] == "first", "the figure is drawn by a worker started on its own"
    finally:
        shutil.rmtree(folder)


# -- trust: a kept template never shows code that changed ---------------------------------------------------

TRUST_PAGE = PAGE + '   import editable_lib\n   print("editable", editable_lib.VALUE)\n'


def test_code_next_to_the_page_and_on_a_path_conf_py_adds_shows_its_edit_with_the_template_reused(
    tmp_path: Path, ended: Callable[[TemplateLink], None]
) -> None:
    # An editable-style checkout: conf.py puts its src folder first on the import path.
    conf = "modelvis_keep_warm = 120\nimport sys, pathlib\n"
    conf += "sys.path.insert(0, str(pathlib.Path(__file__).parent.parent / 'src'))\n"
    docs = project(tmp_path, conf=conf, page=TRUST_PAGE)
    ended(kept_link(docs))
    write(tmp_path / "src" / "editable_lib" / "__init__.py", "VALUE = 'first'\n")
    sphinx(docs)
    first = shown(docs)
    assert (first["local"], first["editable"]) == ("first", "first")
    write(docs / "mylib.py", "VALUE = 'edited'\n")
    write(tmp_path / "src" / "editable_lib" / "__init__.py", "VALUE = 'edited too'\n")
    log = sphinx(docs)
    second = shown(docs)
    assert (second["local"], second["editable"]) == ("edited", "edited too")
    assert second["template"] == first["template"]
    assert outcome(log).startswith("reused")


UPGRADED_PAGE = """\
Page
====

.. modelvis::
   :name: report

   import os, sys
   preloaded = "warmmod" in sys.modules
   import warmmod
   print("template", os.getppid())
   print("preloaded", preloaded)
   print("version", warmmod.VERSION)
   print("build", warmmod.BUILD)
"""


def install_warmdist(site: Path, version: str, build: str = "first") -> None:
    """``warmdist`` at ``version`` in the user site folder ``site``: its ``.dist-info`` and its module."""
    for old in site.glob("warmdist-*.dist-info"):
        shutil.rmtree(old)
    info = site / f"warmdist-{version}.dist-info"
    write(info / "METADATA", f"Metadata-Version: 2.1\nName: warmdist\nVersion: {version}\n")
    write(info / "top_level.txt", "warmmod\n")
    write(info / "RECORD", f"warmmod.py,,\nwarmdist-{version}.dist-info/METADATA,,\n")
    write(site / "warmmod.py", f"VERSION = {version!r}\nBUILD = {build!r}\n")


def test_an_upgraded_distribution_restarts_the_template_and_the_figure_shows_the_new_version(
    tmp_path: Path, ended: Callable[[TemplateLink], None]
) -> None:
    # A user site folder (PYTHONUSERBASE) is a folder of installed packages: the template imports them ahead.
    base = tmp_path / "userbase"
    scheme = sysconfig.get_preferred_scheme("user")
    site = Path(sysconfig.get_path("purelib", scheme, vars={"userbase": str(base)}))
    install_warmdist(site, "1.0")
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    environment = {"PYTHONUSERBASE": str(base), "PYTHONPATH": path}
    docs = project(tmp_path, page=UPGRADED_PAGE)
    ended(kept_link(docs))
    sphinx(docs, environment=environment)
    first = shown(docs)
    assert (first["preloaded"], first["version"]) == ("True", "1.0"), "imported by the template, ahead"
    install_warmdist(site, "2.0")
    log = sphinx(docs, environment=environment)
    second = shown(docs)
    assert second["version"] == "2.0"
    assert second["template"] != first["template"]
    assert outcome(log).endswith("warmdist 1.0 -> 2.0")
    # `pip install .` of the library being documented, its version unchanged: a new install all the same.
    install_warmdist(site, "2.0", build="second")
    log = sphinx(docs, "-E", "-D", "modelvis_execute=always", environment=environment)
    third = shown(docs)
    assert (third["version"], third["build"]) == ("2.0", "second")
    assert third["template"] != second["template"]
    assert outcome(log).endswith("warmdist installed again")


# -- the author's servers ----------------------------------------------------------------------------------


def figure_text(page: str) -> dict[str, str]:
    """What the served page's figure shows (``key value`` lines), read from its ``<pre>``."""
    soup = BeautifulSoup(page, "html.parser")
    figure = soup.select_one(".modelvis-figure")
    if figure is None:
        return {}
    lines = [line.split(" ", 1) for line in figure_lines(figure) if " " in line]
    return {key: value for key, value in lines}


def test_sphinx_autobuild_keeps_the_template_by_default_and_a_rebuild_reuses_it(
    tmp_path: Path, ended: Callable[[TemplateLink], None]
) -> None:
    pytest.importorskip("sphinx_autobuild")
    docs = project(tmp_path, conf="")  # modelvis_keep_warm unset
    ended(kept_link(docs))
    address = free_address()
    host, port = address.split(":")
    log = tmp_path / "autobuild.log"
    with open(log, "w") as output:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sphinx_autobuild",
                "--ignore",  # as the Sphinx guide says: the cache is in the watched folder
                "*/.modelvis-cache/*",
                "--host",
                host,
                "--port",
                port,
                str(docs),
                str(tmp_path / "out"),
            ],
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        first = figure_text(served(address, lambda page: "local first" in page, server))
        write(docs / "mylib.py", "VALUE = 'edited'\n")
        second = figure_text(served(address, lambda page: "local edited" in page, server))
    finally:
        stop(server)
    text = log.read_text()
    assert (first.get("local"), second.get("local")) == ("first", "edited"), text
    assert second["template"] == first["template"]
    assert f"started a warm template process (pid {first['template']}), kept 900 s idle" in text
    assert f"reused the warm template process (pid {first['template']})" in text
    assert eventually(lambda: not alive(int(first["template"]))), "sphinx-autobuild stopped: so did its template"
    assert eventually(lambda: not warm_folder(docs / "_build" / ".modelvis-cache").exists())


MKDOCS_PAGE = "# Page\n\n```{modelvis}\nimport os\nprint('template', os.getppid())\nprint('value', 'first')\n```\n"


def test_mkdocs_serve_keeps_the_template_across_rebuilds_and_ends_it_with_the_server(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    write(tmp_path / "mkdocs.yml", "site_name: warm\ntheme: mkdocs\nplugins:\n  - modelvis:\n      format: html\n")
    write(tmp_path / "docs" / "index.md", MKDOCS_PAGE)
    log = tmp_path / "serve.log"
    with mkdocs_serve(tmp_path, log) as (address, server):
        first = figure_text(served(address, lambda page: "value first" in page, server))
        write(tmp_path / "docs" / "index.md", MKDOCS_PAGE.replace("'first'", "'edited'"))
        second = figure_text(served(address, lambda page: "value edited" in page, server))
    text = log.read_text()
    assert (first.get("value"), second.get("value")) == ("first", "edited"), text
    template = int(first["template"])
    assert second["template"] == str(template), "the rebuild forked its worker from the same template"
    assert f"reused the warm template process (pid {template})" in text
    assert eventually(lambda: not alive(template)), "the server stopped: so did its template"
    assert not warm_folder(tmp_path / ".modelvis-cache").exists()


def test_a_killed_mkdocs_serve_takes_its_template_with_it(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    write(tmp_path / "mkdocs.yml", "site_name: warm\ntheme: mkdocs\nplugins:\n  - modelvis:\n      format: html\n")
    write(tmp_path / "docs" / "index.md", MKDOCS_PAGE)
    address = free_address()
    server = subprocess.Popen(
        [sys.executable, "-m", "mkdocs", "serve", "--dev-addr", address],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        template = int(figure_text(served(address, lambda page: "value first" in page, server))["template"])
    finally:
        server.kill()  # no on_shutdown
        server.wait()
    assert eventually(lambda: not alive(template)), "the server is gone: its template too"
    assert eventually(lambda: not warm_folder(tmp_path / ".modelvis-cache").exists())


def test_a_build_in_a_process_that_imported_sphinx_autobuild_is_no_autobuild_rebuild() -> None:
    # This test process imports it (the test above does too); its own builds are one-shot builds all the same.
    pytest.importorskip("sphinx_autobuild")
    from sphinx_modelvis.sphinx.build import under_sphinx_autobuild

    assert not under_sphinx_autobuild()


def test_a_long_temporary_folder_does_not_make_the_socket_s_path_too_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = tmp_path / ("d" * 100)
    deep.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    folder = warm_folder(tmp_path / "cache")
    assert len(os.fsencode(folder / "template.sock")) <= 107, "a Unix socket's path holds 107 bytes"
    assert folder.name.startswith(f"modelvis-warm-{os.getuid()}-")
    assert warm_folder(tmp_path / "cache") == folder and warm_folder(tmp_path / "other") != folder
