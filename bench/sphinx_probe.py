"""A Sphinx extension the build-cost benchmark adds to its projects: what the Sphinx process held when the build ended.

At ``build-finished`` (after sphinx-modelvis has stopped its worker, so that the worker is a reaped child) it
writes JSON to the file named by ``MODELVIS_BENCH_PROBE``: whether ``torch`` is in ``sys.modules``, the Sphinx
process's own peak RSS, the peak RSS of its reaped children (the worker: Sphinx starts no other process), and
the figure runner's counters (worker starts, snippets run, cache hits, failures). Standard library only.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from typing import Any

__all__ = ["setup"]


def _finished(app: Any, exception: BaseException | None) -> None:
    path = os.environ.get("MODELVIS_BENCH_PROBE")
    if not path:
        return
    data: dict[str, Any] = {
        "torch_imported": "torch" in sys.modules,
        "transformers_imported": "transformers" in sys.modules,
        # Linux reports ru_maxrss in KiB.
        "sphinx_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "children_maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        "exception": None if exception is None else repr(exception),
    }
    if "sphinx_modelvis" in app.extensions:
        from sphinx_modelvis.sphinx import runner_for

        stats = runner_for(app).stats
        data.update(
            worker_starts=stats.worker_starts,
            executed=stats.executed,
            replayed=stats.replayed,
            cached=stats.cached,
            failed=stats.failed,
        )
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(data, stream)


def setup(app: Any) -> dict[str, Any]:
    # Priority 900: after sphinx-modelvis's own build-finished handler (500) has closed and reaped the worker.
    app.connect("build-finished", _finished, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
