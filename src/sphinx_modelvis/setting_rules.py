"""What a setting's value must be beyond its type (:class:`Rule`), and the rules several settings share."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["POSITIVE_SECONDS", "TORCH_DEVICE", "Rule", "at_least"]

_DEVICE = re.compile(r"^[a-z_]+(:\d+)?$")


@dataclass(frozen=True, slots=True)
class Rule:
    """What a setting's value must be beyond its type, declared with the setting.

    ``holds(value)`` says whether a (typed, not ``None``) value keeps the rule; ``must_be`` says what it must
    be as a site setting's error puts it (``columns = 5 is invalid: it must be at least 20``), ``expected`` as
    a figure option's error does (``expected a number of at least 20, got 5``).
    """

    holds: Callable[[Any], bool]
    must_be: str
    expected: str

    def check(self, value: Any) -> bool:
        """Whether ``value`` keeps the rule (``None``, where the type allows it, always does)."""
        return value is None or self.holds(value)


def at_least(minimum: int) -> Rule:
    """A number of at least ``minimum``."""
    return Rule(lambda value: value >= minimum, f"at least {minimum}", f"a number of at least {minimum}")


POSITIVE_SECONDS = Rule(lambda value: value > 0, "more than 0", "a positive number of seconds")
TORCH_DEVICE = Rule(
    lambda value: bool(_DEVICE.match(value)),
    "a torch device such as 'meta', 'cpu' or 'cuda:0'",
    "a torch device such as meta, cpu or cuda:0",
)
