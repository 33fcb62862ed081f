"""Running snippets: in this process (command line) or in a worker process (docs builds)."""
