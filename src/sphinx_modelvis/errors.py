"""The exceptions sphinx-modelvis raises; every one is a :class:`ModelvisError`."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ExecutionCrashed",
    "ExecutionTimeout",
    "ModelvisError",
    "NotAModule",
    "SnippetError",
]


class ModelvisError(Exception):
    """Base class of every error sphinx-modelvis raises on purpose."""


class SnippetError(ModelvisError):
    """A snippet raised; ``traceback`` holds the snippet's own traceback lines and ``line`` the source line."""

    def __init__(self, message: str, *, traceback: str = "", filename: str = "", line: int | None = None) -> None:
        super().__init__(message)
        self.traceback = traceback
        self.filename = filename
        self.line = line


class ForwardError(SnippetError):
    """The forward pass of a forward view raised; ``traceback`` holds the model's own frames."""


class NotAModule(ModelvisError):
    """The expression to show is missing or is not a ``torch.nn.Module``."""


class ExecutionTimeout(ModelvisError):
    """A snippet ran past its timeout and its worker was killed."""


class ExecutionCrashed(ModelvisError):
    """The worker process running a snippet died (segfault, ``os._exit``, out of memory)."""


class ConfigError(ModelvisError):
    """A configuration value or a figure option is invalid; the message names it and what it accepts."""
