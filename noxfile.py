"""The compatibility matrix: the tests marked ``compat`` against the oldest, a middle and the newest supported stack.

``make compat`` (part of ``make test``) runs every session below, each in its own virtualenv under ``.nox/``;
``.venv/bin/python -m nox -s oldest`` runs one, and ``... -s oldest -- tests/test_mkdocs.py -x`` runs other tests in it.

Each session installs the package with its ``sphinx``, ``myst``, ``mkdocs`` and ``peft`` extras and the test tools the
``compat`` tests use, under ``constraints.txt`` less the pins of the packages it sets itself: torch (the CPU build on
this machine's disk), transformers, PEFT and the test tools stay as pinned there. Not the whole ``test`` extra: its
other tools (docs themes, linters, the browser driver) have Sphinx requirements of their own that would narrow the
versions under test. The ``oldest`` column is the lower bound of each range stated in ``pyproject.toml``.
"""

from __future__ import annotations

import re
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent

#: The versions under test, per session. mkdocs-material is not under test: it is pinned where the release in
#: constraints.txt does not install with that session's MkDocs (the tutorial site uses its theme).
MATRIX: dict[str, dict[str, str]] = {
    "oldest": {
        "sphinx": "7.2.0",
        "docutils": "0.18.1",  # the oldest Sphinx 7.2 takes
        # MyST-Parser 2 reads option lines as YAML and rejects a colon in a value (`:caption: LoRA: delta ...`).
        "myst-parser": "3.0.0",
        # MkDocs 1.5.0-1.5.2 install only beside mkdocs-material 9.1, whose search plugin fails in a build that
        # did not come through the `mkdocs` command (as the tests build): untested, so not claimed.
        "mkdocs": "1.5.3",
        "mkdocs-material": "9.5.18",
        "rich": "12.6.0",  # the first whose Console.export_svg takes font_aspect_ratio
        "pillow": "9.3.0",  # the first with wheels for Python 3.11 (older ones build from source)
    },
    "sphinx8": {
        "sphinx": "8.1.3",
        "docutils": "0.21.2",
        "myst-parser": "4.0.1",
        "mkdocs": "1.6.0",
        "rich": "13.9.4",
        "pillow": "11.3.0",
    },
    "newest": {
        "sphinx": "9.0.4",
        "docutils": "0.22.4",
        "myst-parser": "5.2.0",
        "mkdocs": "1.6.1",
        "rich": "15.0.0",
        "pillow": "13.0.0",
    },
}
#: What the ``compat`` tests import besides the package and its extras (versions from constraints.txt).
TEST_TOOLS = ["pytest", "pytest-xdist", "beautifulsoup4", "mkdocs-material"]

nox.options.sessions = list(MATRIX)
# Kept between runs (pip then only checks the pins); `nox --no-reuse-existing-virtualenvs` starts afresh.
nox.options.reuse_venv = "yes"


def _name(requirement: str) -> str:
    """The normalized project name of a requirement line ("" for a comment or a blank line)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement.split("#", 1)[0])
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""


def _constraints(session: nox.Session, overridden: set[str]) -> str:
    """constraints.txt without the lines of the packages this session pins itself, written in its temporary folder."""
    lines = (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if _name(line) not in overridden]
    path = Path(session.create_tmp()) / "constraints.txt"
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return str(path)


def _compat(session: nox.Session) -> None:
    versions = MATRIX[session.name]
    pins = [f"{name}=={version}" for name, version in versions.items()]
    tools = [tool for tool in TEST_TOOLS if tool not in versions]
    session.install("-c", _constraints(session, set(versions)), "-e", ".[sphinx,myst,mkdocs,peft]", *tools, *pins)
    report = "import importlib.metadata as m, sys; print(', '.join(f'{n} {m.version(n)}' for n in sys.argv[1:]))"
    session.run("python", "-c", report, *versions, "torch", "transformers", "peft", silent=False)
    arguments = session.posargs or ["-m", "compat", "-n", "2", "--dist", "loadfile"]
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", *arguments)


@nox.session
def quant(session: nox.Session) -> None:
    """The quantization libraries the figures read (the ``quant`` extra: torchao, bitsandbytes), which the main test
    environment leaves out: their tests there skip, here they must run (``MODELVIS_REQUIRE_OPTIONAL``)."""
    session.install("-c", str(ROOT / "constraints.txt"), "-e", ".[sphinx,peft,quant]", "pytest")
    report = "import importlib.metadata as m, sys; print(', '.join(f'{n} {m.version(n)}' for n in sys.argv[1:]))"
    session.run("python", "-c", report, "torch", "torchao", "bitsandbytes", silent=False)
    arguments = session.posargs or ["tests/test_precision.py"]
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", *arguments, env={"MODELVIS_REQUIRE_OPTIONAL": "1"})


@nox.session
def oldest(session: nox.Session) -> None:
    """The lower bound of each range in pyproject.toml."""
    _compat(session)


@nox.session
def sphinx8(session: nox.Session) -> None:
    """A middle point: Sphinx 8.1, MyST-Parser 4, MkDocs 1.6.0."""
    _compat(session)


@nox.session
def newest(session: nox.Session) -> None:
    """The newest releases that install on Python 3.11 (Sphinx 9.1 and later need 3.12)."""
    _compat(session)
