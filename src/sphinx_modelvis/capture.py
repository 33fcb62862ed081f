"""What a snippet showed, as plain data: captured terminal text and model trees, in order."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .tree import ModelTree

__all__ = ["CUT_MARK", "Capture", "PrintedText", "TextBlock", "TreeBlock"]


@dataclass(slots=True)
class TextBlock:
    """Terminal output the snippet printed, ANSI colors kept.

    When it printed more lines than the figure's line cap (``max_lines``, 0 for none), ``ansi`` holds the
    first lines, ``tail`` the last ones and ``omitted`` how many lines between them were left out; figures
    apply the cap again to the lines as drawn (long lines wrap into several).
    """

    ansi: str
    omitted: int = 0
    tail: str = ""
    max_lines: int = 0


#: A line cut short by :class:`PrintedText` ends with this.
CUT_MARK = "…"


class PrintedText:
    """What a snippet prints, collected in time linear in its size, as one or more :class:`TextBlock` s.

    :attr:`write` appends; text is joined only when :meth:`block` is called, or, with a line cap
    (``max_lines`` > 0), every few megabytes to drop the lines between the first ``max_lines / 2``
    (rounded up) and the last ``max_lines / 2``, counting them. A line longer than a figure could show
    within the cap (``max_lines`` rows of ``columns``) is cut there. With a cap, memory stays bounded
    however much is printed.
    """

    #: Between two compactions, at least this much is written; each write counts as its length plus
    #: ``WRITE_WEIGHT``, so that many short writes are compacted as often as a few long ones.
    CHUNK = 4_000_000
    WRITE_WEIGHT = 256

    def __init__(self, *, max_lines: int = 0, columns: int = 100) -> None:
        self.max_lines = max_lines
        self.omitted = 0
        self._parts: list[str] = []
        #: The first lines once there are enough of them; ``None`` before.
        self._head: str | None = None
        self._head_lines = (max_lines + 1) // 2
        self._tail_lines = max_lines // 2
        self._longest = max_lines * max(columns, 1)
        #: ``sys.stdout.write``: append, and now and then compact. A closure over locals, since a print
        #: flood calls it millions of times (two calls a ``print``).
        self.write: Callable[[str], int] = self._writer()

    def _writer(self) -> Callable[[str], int]:
        append = self._parts.append
        if not self.max_lines:

            def write_all(text: str) -> int:
                append(text)
                return len(text)

            return write_all
        weight = self.WRITE_WEIGHT
        compact = self._compact
        left = self.CHUNK

        def write_capped(text: str) -> int:
            nonlocal left
            append(text)
            size = len(text)
            left -= size + weight
            if left < 0:
                left = compact()
            return size

        return write_capped

    @property
    def empty(self) -> bool:
        return self._head is None and not any(self._parts)

    def _compact(self) -> int:
        """Drop what the cap leaves out; returns how much may be written before the next compaction."""
        text = "".join(self._parts)
        if self._head is None:
            cut = _after_lines(text, self._head_lines)
            if cut < 0:  # fewer lines than the head keeps (written in long lines): nothing to drop yet
                return self._keep(_shorten_lines(text, self._longest))
            self._head = _shorten_lines(text[:cut], self._longest)
            text = text[cut:]
        # Keep the last lines and the one still being written: after the newline that ends the last line dropped.
        complete = text.count("\n")
        if complete > self._tail_lines:
            self.omitted += complete - self._tail_lines
            end = len(text)
            for _ in range(self._tail_lines + 1):
                end = text.rfind("\n", 0, end)
            text = text[end + 1 :]
        return self._keep(_shorten_lines(text, self._longest))

    def _keep(self, text: str) -> int:
        # The list object stays: ``write`` appends to it.
        self._parts[:] = [text] if text else []
        # The next compaction waits for at least as much new text as is kept: all of them together
        # cost time linear in what was written.
        return max(self.CHUNK, 2 * len(text))

    def block(self) -> TextBlock | None:
        """Everything written so far as a block (``None`` if nothing was); the collector starts over."""
        if self.max_lines:
            self._compact()
        text = "".join(self._parts)
        head, self._head = self._head, None
        self._parts.clear()
        omitted, self.omitted = self.omitted, 0
        if head is None:
            return TextBlock(text, max_lines=self.max_lines) if text else None
        return TextBlock(head, omitted=omitted, tail=text, max_lines=self.max_lines)


def _after_lines(text: str, count: int) -> int:
    """Where the text after its first ``count`` lines starts, or -1 when it has fewer."""
    position = 0
    for _ in range(count):
        found = text.find("\n", position)
        if found < 0:
            return -1
        position = found + 1
    return position


def _shorten_lines(text: str, longest: int) -> str:
    """``text`` with every line longer than ``longest`` characters cut there (and marked)."""
    if len(text) <= longest or longest <= 0:
        return text
    lines = text.split("\n")
    if all(len(line) <= longest for line in lines):
        return text
    return "\n".join(line if len(line) <= longest else line[:longest] + CUT_MARK for line in lines)


@dataclass(slots=True)
class TreeBlock:
    """A model tree to draw, with how to lay it out."""

    tree: ModelTree
    rootname: str = "root"
    max_depth: int | None = None
    summary: bool = True


Block = TextBlock | TreeBlock


@dataclass(slots=True)
class Capture:
    """Everything one snippet showed, in the order it showed it."""

    blocks: list[Block] = field(default_factory=list)

    def to_json(self) -> str:
        items: list[dict[str, Any]] = []
        for block in self.blocks:
            if isinstance(block, TextBlock):
                item: dict[str, Any] = {"kind": "text", "ansi": block.ansi}
                if block.omitted or block.tail:
                    item.update(omitted=block.omitted, tail=block.tail)
                if block.max_lines:
                    item["max_lines"] = block.max_lines
                items.append(item)
            else:
                items.append(
                    {
                        "kind": "tree",
                        "tree": block.tree.to_dict(),
                        "rootname": block.rootname,
                        "max_depth": block.max_depth,
                        "summary": block.summary,
                    }
                )
        return json.dumps({"blocks": items}, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Capture:
        capture = cls()
        for item in json.loads(text)["blocks"]:
            if item["kind"] == "text":
                block = TextBlock(item["ansi"], item.get("omitted", 0), item.get("tail", ""), item.get("max_lines", 0))
                capture.blocks.append(block)
            else:
                capture.blocks.append(
                    TreeBlock(
                        ModelTree.from_json(item["tree"]),
                        rootname=item["rootname"],
                        max_depth=item["max_depth"],
                        summary=item["summary"],
                    )
                )
        return capture

    @property
    def empty(self) -> bool:
        return not any(
            isinstance(block, TreeBlock) or block.ansi.strip() or block.tail.strip() for block in self.blocks
        )
