"""The color roles of a figure (name, type, tunable, frozen, folded, delta, ...) in a dark and a light theme."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["THEMES", "Role", "Theme", "get_theme"]


@dataclass(frozen=True, slots=True)
class Role:
    """How one role is drawn: a ``#rrggbb`` color and whether it is bold or italic."""

    color: str
    bold: bool = False
    italic: bool = False


@dataclass(frozen=True, slots=True)
class Theme:
    """A background, a foreground and one :class:`Role` per part of the tree.

    The roles follow the tutorial's color scheme: module name white (or near black on a light
    background), type green, tunable parameters blue, frozen grey, folded repeats red,
    delta parameters purple.
    """

    name: str
    background: str
    foreground: str
    module_name: Role
    module_type: Role
    tunable: Role
    frozen: Role
    delta: Role
    buffer: Role
    folded: Role
    guide: Role
    note: Role
    error: Role
    #: The 16 ANSI colors (black, red, green, yellow, blue, magenta, cyan, white, then bright ones),
    #: used for captured terminal output that names palette colors.
    ansi: tuple[str, ...]

    def role(self, name: str) -> Role:
        """The role called ``name`` (``"tunable"``, ``"module_name"``, ...)."""
        value = getattr(self, name)
        if not isinstance(value, Role):
            raise KeyError(name)
        return value


DARK = Theme(
    name="dark",
    background="#0d1117",
    foreground="#e6edf3",
    module_name=Role("#ffffff", bold=True),
    module_type=Role("#56d364"),
    tunable=Role("#79b8ff"),
    frozen=Role("#8b949e"),
    delta=Role("#d2a8ff", bold=True),
    buffer=Role("#e3b341"),
    folded=Role("#ff7b72", bold=True),
    guide=Role("#6e7681"),
    note=Role("#a5afba", italic=True),
    error=Role("#ff7b72", bold=True),
    ansi=(
        "#484f58", "#ff7b72", "#3fb950", "#d29922", "#58a6ff", "#bc8cff", "#39c5cf", "#b1bac4",
        "#6e7681", "#ffa198", "#56d364", "#e3b341", "#79c0ff", "#d2a8ff", "#56d4dd", "#ffffff",
    ),
)  # fmt: skip

LIGHT = Theme(
    name="light",
    background="#ffffff",
    foreground="#1f2328",
    module_name=Role("#1f2328", bold=True),
    module_type=Role("#1a7f37"),
    tunable=Role("#0550ae"),
    frozen=Role("#6e7781"),
    delta=Role("#8250df", bold=True),
    buffer=Role("#9a6700"),
    folded=Role("#cf222e", bold=True),
    guide=Role("#8c959f"),
    note=Role("#57606a", italic=True),
    error=Role("#cf222e", bold=True),
    ansi=(
        "#24292f", "#cf222e", "#116329", "#4d2d00", "#0969da", "#8250df", "#1b7c83", "#6e7781",
        "#57606a", "#a40e26", "#1a7f37", "#633c01", "#218bff", "#a475f9", "#3192aa", "#8c959f",
    ),
)  # fmt: skip

THEMES: dict[str, Theme] = {"dark": DARK, "light": LIGHT}


def get_theme(name: str | Theme) -> Theme:
    """The theme called ``name`` (``"dark"`` or ``"light"``), or ``name`` itself if it is a :class:`Theme`."""
    if isinstance(name, Theme):
        return name
    try:
        return THEMES[name]
    except KeyError:
        raise ValueError(f"unknown theme {name!r}; choose one of: {', '.join(THEMES)}") from None
