"""A figure drawn to PNG with Pillow and the DejaVu Sans Mono font shipped in this package."""

from __future__ import annotations

import io
from functools import lru_cache
from importlib import resources

from rich.style import Style

from .boxdraw import DOWN, LEFT, RIGHT, UP, split_box_cells
from .figure import SHORTER_HINT, Figure, _console, first_lines, terminal_theme

__all__ = ["figure_png"]

FONT_FILES = {False: "DejaVuSansMono.ttf", True: "DejaVuSansMono-Bold.ttf"}
#: Images up to this many pixels (a 100-line figure has about 6 million) are saved with ``optimize``.
OPTIMIZE_PIXELS = 8_000_000


@lru_cache(maxsize=8)
def _font(bold: bool, size: int):  # type: ignore[no-untyped-def]
    from PIL import ImageFont

    data = resources.files(__package__).joinpath("fonts", FONT_FILES[bold]).read_bytes()
    return ImageFont.truetype(io.BytesIO(data), size)


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def figure_png(
    figure: Figure,
    *,
    font_size: int = 28,
    max_lines: int | None = None,
    hint: str = SHORTER_HINT,
) -> bytes:
    """PNG bytes of the figure: same lines, colors and guides as the SVG, at ``font_size`` pixels.

    Box-drawing characters are drawn as lines, so guides join at any size. A figure of more than
    ``max_lines`` lines, or too tall for image libraries to open (Pillow refuses images of more than
    ``Image.MAX_IMAGE_PIXELS`` pixels), keeps its first lines and ends with a note of how many more there
    were and ``hint``: how to draw a shorter one.
    """
    from PIL import Image, ImageDraw

    palette = terminal_theme(figure.theme)
    regular = _font(False, font_size)
    ascent, descent = regular.getmetrics()
    cell_width = regular.getlength("M")
    line_height = round(font_size * 1.3)
    text_top = (line_height - (ascent + descent)) / 2
    padding = round(font_size * 0.6)
    width = round(figure.width * cell_width) + 2 * padding
    limit = Image.MAX_IMAGE_PIXELS
    if limit:
        fitting = max(1, (int(limit) // width - 2 * padding) // line_height)
        max_lines = fitting if max_lines is None else min(max_lines, fitting)
    if max_lines is not None and len(figure.lines) > max_lines:
        figure = first_lines(figure, max_lines, hint=hint)
        width = max(width, round(figure.width * cell_width) + 2 * padding)  # the note may be the widest line
    height = max(len(figure.lines), 1) * line_height + 2 * padding
    image = Image.new("RGB", (width, height), _rgb(figure.theme.background))
    draw = ImageDraw.Draw(image)
    console = _console(figure.width + 1)
    stroke = max(1, round(font_size / 14))
    heavy_stroke = 2 * stroke
    for row, line in enumerate(figure.lines):
        top = padding + row * line_height
        text, cells = split_box_cells(line, palette)
        column = 0
        # ``Text.render`` leaves a line without spans unstyled (a console applies its style when printing it).
        base = console.get_style(text.style, default=Style()) if text.style else Style()
        for segment in text.render(console):
            style = segment.style or base
            if segment.text.strip():
                color = (
                    style.color.get_truecolor(palette).hex
                    if style.color and not style.color.is_default
                    else figure.theme.foreground
                )
                draw.text(
                    (padding + column * cell_width, top + text_top),
                    segment.text,
                    font=_font(bool(style.bold), font_size),
                    fill=_rgb(color),
                )
            column += segment.cell_length
        for cell in cells:
            x0 = padding + cell.column * cell_width
            cx = round(x0 + cell_width / 2)
            cy = round(top + line_height / 2)
            width_px = heavy_stroke if cell.heavy else stroke
            fill = _rgb(cell.color)
            if cell.arms & (LEFT | RIGHT):
                left = round(x0) if cell.arms & LEFT else cx
                right = round(x0 + cell_width) if cell.arms & RIGHT else cx
                draw.line([(left, cy), (right, cy)], fill=fill, width=width_px)
            if cell.arms & (UP | DOWN):
                upper = top if cell.arms & UP else cy
                lower = top + line_height if cell.arms & DOWN else cy
                draw.line([(cx, upper), (cx, lower)], fill=fill, width=width_px)
    out = io.BytesIO()
    # ``optimize`` saves a few percent and costs seconds on the tallest images: only for the usual sizes.
    image.save(out, format="PNG", optimize=width * height <= OPTIMIZE_PIXELS)
    return out.getvalue()
