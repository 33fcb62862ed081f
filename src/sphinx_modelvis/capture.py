"""What a snippet showed, as plain data: captured terminal text and model trees, in order."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .tree import ModelTree

__all__ = ["Capture", "TextBlock", "TreeBlock"]


@dataclass(slots=True)
class TextBlock:
    """Terminal output the snippet printed, ANSI colors kept."""

    ansi: str


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

    def add_text(self, ansi: str) -> None:
        """Append printed text, joining it to the text just before."""
        if not ansi:
            return
        if self.blocks and isinstance(self.blocks[-1], TextBlock):
            self.blocks[-1].ansi += ansi
        else:
            self.blocks.append(TextBlock(ansi))

    def to_json(self) -> str:
        items: list[dict[str, Any]] = []
        for block in self.blocks:
            if isinstance(block, TextBlock):
                items.append({"kind": "text", "ansi": block.ansi})
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
                capture.blocks.append(TextBlock(item["ansi"]))
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
        return not any(isinstance(block, TreeBlock) or block.ansi.strip() for block in self.blocks)
