"""Where the figure cache lives: the rule the guides state, checked with ``sphinx-build`` as a user runs it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from sphinx_modelvis.execution.cache import cache_folder

GUIDES = Path(__file__).resolve().parents[1] / "docs" / "guides"


def documented_cache_path() -> str:
    """The folder the CI guide tells ``actions/cache`` to keep, for its project whose source folder is ``docs``."""
    text = (GUIDES / "ci.md").read_text(encoding="utf-8")
    (path,) = re.findall(r"^ +path: (\S*modelvis-cache\S*)$", text, flags=re.MULTILINE)
    return path


def test_the_cache_lands_where_the_ci_guide_says_whatever_the_output_folder(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "conf.py").write_text('extensions = ["sphinx_modelvis"]\nexclude_patterns = ["_build"]\n')
    (docs / "index.rst").write_text("Cached\n======\n\n.. modelvis::\n\n   print('from the cache folder')\n")
    # The output folder outside the source folder, as a site deployed from `public/` is built.
    build = [sys.executable, "-m", "sphinx", "-q", "-b", "html", "docs", "public"]
    subprocess.run(build, cwd=tmp_path, check=True, capture_output=True, text=True, timeout=300)
    entries = sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*.json"))
    documented = documented_cache_path()
    assert documented == "docs/_build/.modelvis-cache"
    assert len(entries) == 1 and entries[0].startswith(documented + "/"), entries
    assert cache_folder("", config_dir=docs, host="sphinx") == tmp_path / documented
    assert "from the cache folder" in (tmp_path / entries[0]).read_text()
    guide = " ".join((GUIDES / "ci.md").read_text(encoding="utf-8").split())
    assert "by default `_build/.modelvis-cache` in the folder of `conf.py` (the docs source folder)" in guide
