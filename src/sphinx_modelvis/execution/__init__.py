"""Running snippets: in this process (command line) or in a worker process (docs builds).

From the hosts down: ``session`` (page sessions, the cache, the steps after a run) -> ``steps`` (a page's
snippets brought into the worker) -> ``client`` (the worker process, its namespace and position) ->
``template`` (the warm process workers are forked from) and ``worker`` (runs ``snippet``). Beside them:
``wire`` (the messages), ``preload`` (what a template may import ahead), ``processes``, ``cache``, ``results``,
``dependencies`` (what a page's snippets depended on, recorded in the worker), ``manifest`` (a cache entry's
record of those, checked by the host before a hit), ``checkpoints`` (paused forks of a page's worker after each
snippet, which a kept-warm template's next build resumes from) and ``checkpoint_memory`` (their memory bound).
"""
