"""``modelvis cache size [FOLDER]`` and ``modelvis cache prune [--max-age DAYS] [FOLDER]``: a figure cache's size,
and removing the entries no build has used for a while (what each build does with ``cache_max_age``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["cache_main"]


def _parser() -> argparse.ArgumentParser:
    from .config import ModelvisConfig

    default_age = ModelvisConfig.__dataclass_fields__["cache_max_age"].default
    parser = argparse.ArgumentParser(
        prog="modelvis cache",
        description="Show the size of a figure cache, or remove the entries no build has used for a while.",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    size = actions.add_parser("size", help="how many entries the cache holds, and their size")
    prune = actions.add_parser("prune", help="remove the entries no build has used (read or written) for DAYS days")
    prune.add_argument(
        "--max-age",
        type=_days,
        default=default_age,
        metavar="DAYS",
        help=f"remove entries unused for more than this many days (default {default_age:g}, the settings' default)",
    )
    for action in (size, prune):
        action.add_argument(
            "folder",
            nargs="?",
            type=Path,
            metavar="FOLDER",
            help="the cache folder (default: _build/.modelvis-cache or .modelvis-cache here, whichever exists)",
        )
    return parser


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of days, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of days, 0 or more, got {text!r}")
    return value


def _default_folder() -> Path | None:
    """The cache folder of the site in the working directory: where Sphinx or MkDocs keeps it by default."""
    from .execution.cache import DEFAULT_CACHE_DIRS

    found = [Path(folder) for folder in DEFAULT_CACHE_DIRS.values() if Path(folder).is_dir()]
    return found[0] if len(found) == 1 else None


def cache_main(argv: Sequence[str]) -> int:
    """Run ``modelvis cache ...`` (``argv``: what follows ``cache``); returns the exit status."""
    from .execution.cache import FigureCache

    args = _parser().parse_args(argv)
    folder = args.folder or _default_folder()
    if folder is None:
        print("modelvis cache: no single default cache folder here: give the cache folder", file=sys.stderr)
        return 2
    if not folder.is_dir():
        print(f"modelvis cache: {folder} is not a folder", file=sys.stderr)
        return 2
    cache = FigureCache(folder)
    if args.action == "prune":
        removed = cache.prune(args.max_age)
        print(f"{folder}: removed {removed} (unused for more than {args.max_age:g} days); left: {cache.usage()}")
    else:
        print(f"{folder}: {cache.usage()}")
    return 0
