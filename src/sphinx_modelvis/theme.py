"""The color roles of a figure (name, type, tunable, frozen, folded, delta, ...) in a dark and a light theme."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CSS_NAMES",
    "PROBE",
    "PROBE_NAMES",
    "THEMES",
    "THEME_CHOICES",
    "Role",
    "Theme",
    "css_colors",
    "get_theme",
]


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
    #: Marks of a comparison (``+``, ``-``, ``~``): what was added, removed, or changed (state, shape, dtype,
    #: class, place).
    added: Role
    removed: Role
    changed: Role
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
    added=Role("#3fb950", bold=True),
    removed=Role("#f85149", bold=True),
    changed=Role("#e3b341", bold=True),
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
    added=Role("#116329", bold=True),
    removed=Role("#a40e26", bold=True),
    changed=Role("#7d4e00", bold=True),
    ansi=(
        "#24292f", "#cf222e", "#116329", "#4d2d00", "#0969da", "#8250df", "#1b7c83", "#6e7781",
        "#57606a", "#a40e26", "#1a7f37", "#633c01", "#218bff", "#a475f9", "#3192aa", "#8c959f",
    ),
)  # fmt: skip

THEMES: dict[str, Theme] = {"dark": DARK, "light": LIGHT}

#: The theme names a figure accepts: ``auto`` follows the page's light/dark mode where it can (HTML), and
#: is light on paper (LaTeX); the others pin one.
THEME_CHOICES = ("auto", "dark", "light")

#: The name of each color of a theme as a CSS custom property (``--mv-<name>``), for figures whose colors
#: follow the page: the background, the foreground, each role, then ``a0`` to ``a15`` for the ANSI colors.
CSS_NAMES: dict[str, str] = {
    "background": "bg",
    "foreground": "fg",
    "module_name": "n",
    "module_type": "t",
    "tunable": "u",
    "frozen": "z",
    "delta": "d",
    "buffer": "w",
    "folded": "f",
    "guide": "g",
    "note": "o",
    "error": "e",
    "added": "p",
    "removed": "r",
    "changed": "y",
}


def css_colors(theme: Theme) -> dict[str, str]:
    """Every color of ``theme`` by its CSS name (see :data:`CSS_NAMES`)."""
    colors = {name: getattr(theme, field) for field, name in CSS_NAMES.items() if field in ("background", "foreground")}
    colors.update({name: theme.role(field).color for field, name in CSS_NAMES.items() if name not in colors})
    colors.update({f"a{index}": color for index, color in enumerate(theme.ansi)})
    return colors


def _probe() -> Theme:
    """A theme of its own for each color (``#01010a``, ``#01010b``, ...), drawn like the others: a figure drawn
    in it can have its colors swapped for CSS custom properties, one by one, with nothing mistaken."""
    serial = iter(range(1, 64))

    def color() -> str:
        return f"#0101{next(serial):02x}"

    background, foreground = color(), color()
    roles = {
        field: Role(color(), DARK.role(field).bold, DARK.role(field).italic)
        for field in CSS_NAMES
        if field not in ("background", "foreground")
    }
    return Theme(
        name="probe", background=background, foreground=foreground, ansi=tuple(color() for _ in range(16)), **roles
    )  # type: ignore[arg-type]


#: See :func:`_probe`; :data:`PROBE_NAMES` maps each of its colors to its CSS name.
PROBE = _probe()
PROBE_NAMES: dict[str, str] = {color: name for name, color in css_colors(PROBE).items()}


def get_theme(name: str | Theme) -> Theme:
    """The theme called ``name`` (``"dark"`` or ``"light"``), or ``name`` itself if it is a :class:`Theme`."""
    if isinstance(name, Theme):
        return name
    try:
        return THEMES[name]
    except KeyError:
        raise ValueError(f"unknown theme {name!r}; choose one of: {', '.join(THEMES)}") from None
