"""Libraries the figures read when they are installed (the ``quant`` extra: torchao, bitsandbytes).

The main test environment leaves them out (with them, ``import peft`` imports both and every worker pays for it);
their tests skip there, and the ``quant`` session of ``noxfile.py`` (part of ``make test``) installs them and sets
``MODELVIS_REQUIRE_OPTIONAL``, where a missing library fails instead of skipping.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import pytest

#: Set by the ``quant`` nox session: the optional libraries are installed there, so their tests must run.
REQUIRED = bool(os.environ.get("MODELVIS_REQUIRE_OPTIONAL"))


def optional_module(name: str) -> Any:
    """The module ``name``, or a skip when it is not installed (a failure where the run requires it)."""
    if REQUIRED:
        return importlib.import_module(name)
    return pytest.importorskip(name)
