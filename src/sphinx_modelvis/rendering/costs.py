"""The memory view and the forward view's FLOPs drawn: each module's bytes or FLOPs on its line, the totals under
the tree."""

from __future__ import annotations

from rich.text import Text

from ..flop_summary import FlopSummary, format_flops
from ..memory import HALF_PRECISION, OPTIMIZER_NAMES, OPTIMIZERS, format_bytes, node_bytes
from ..sizes import MemorySummary
from ..theme import Theme
from ..tree import ModuleNode, format_dtype
from .styled import Styles, Token, wrap

__all__ = ["flop_summary_lines", "flop_tokens", "memory_summary_lines", "memory_tokens"]

#: Where a wrapped summary line goes on.
INDENT = "    "


def _weights(pairs: tuple[tuple[str, int], ...], dominant_dtype: str) -> str:
    """``27.0 MiB``; of another dtype than the figure's usual one ``4.0 KiB f32``; mixed ``26.9 MiB bf16 + 96 B
    f32``."""
    if len(pairs) == 1 and pairs[0][0] == dominant_dtype:
        return format_bytes(pairs[0][1])
    return " + ".join(f"{format_bytes(size)} {format_dtype(dtype)}" for dtype, size in pairs)


def _difference(now: int, was: int) -> str:
    change = now - was
    return f"(was {format_bytes(was)}, {'+' if change >= 0 else '-'}{format_bytes(abs(change))})"


def memory_tokens(node: ModuleNode, styles: Styles, *, folded: bool, dominant_dtype: str) -> list[Token]:
    """A measured module's bytes: ``27.0 MiB``, under training ``+ 96.0 KiB grads + 192.0 KiB Adam = 27.3 MiB``,
    ``each`` on a folded line, and in a comparison what it was where that differs."""
    if not node.memory and not any(node.training):  # a module of tied weights only: nothing of its own
        return []
    tokens = [Token(_weights(node.memory, dominant_dtype) if node.memory else "0 B", styles.foreground)]
    if node.training and any(node.training):
        gradients, states, master = node.training
        tunable = styles.state["tunable"]
        if gradients:
            tokens.append(Token(f"+ {format_bytes(gradients)} grads", tunable))
        if states:
            tokens.append(Token(f"+ {format_bytes(states)} states", tunable))
        if master:
            tokens.append(Token(f"+ {format_bytes(master)} master", tunable))
        tokens.append(Token(f"= {format_bytes(node_bytes(node))}", styles.foreground))
    if folded:
        tokens.append(Token("each", styles.folded))
    if node.memory_was >= 0:
        tokens.append(Token(_difference(node_bytes(node), node.memory_was), styles.change["changed"]))
    return tokens


def memory_summary_lines(summary: MemorySummary, theme: Theme, *, width: int = 100) -> list[Text]:
    """``memory: 417.7 MiB f32 + 2.0 KiB i64 (2.0 KiB buffers)``; under training the costs it adds and what they
    assume; in a comparison the earlier total."""
    styles = Styles(theme)
    note = styles.note
    tunable = styles.state["tunable"]
    lines: list[Text] = []
    tokens = [Token("memory:", note)]
    pairs = summary.by_dtype or (("float32", 0),)
    for index, (dtype, size) in enumerate(pairs):
        token = Token(f"{format_bytes(size)} {format_dtype(dtype)}", styles.foreground)
        if index < len(pairs) - 1:
            token.append(" +", note)
        tokens.append(token)
    if len(pairs) > 1:
        tokens.append(Token(f"= {format_bytes(summary.weights)}", styles.foreground))
    if summary.buffers:
        tokens.append(Token(f"({format_bytes(summary.buffers)} in buffers)", note))
    if summary.before >= 0 and not summary.training:
        tokens.append(Token(_difference(summary.total, summary.before), styles.change["changed"]))
    lines.extend(wrap(tokens, "", INDENT, max(width, 24), note))
    if not summary.training:
        return lines
    name = OPTIMIZER_NAMES.get(summary.optimizer, summary.optimizer)
    tokens = [
        Token("training:", note),
        Token(f"{format_bytes(summary.weights)} weights", styles.foreground),
        Token(f"+ {format_bytes(summary.gradients)} gradients", tunable),
        Token(f"+ {format_bytes(summary.states)} {name} states", tunable),
    ]
    if summary.master:
        tokens.append(Token(f"+ {format_bytes(summary.master)} fp32 master weights", tunable))
    tokens.append(Token(f"= {format_bytes(summary.total)}", styles.foreground))
    if summary.before >= 0:
        tokens.append(Token(_difference(summary.total, summary.before), styles.change["changed"]))
    lines.extend(wrap(tokens, "", INDENT, max(width, 24), note))
    halves = ", ".join(format_dtype(dtype) for dtype in HALF_PRECISION)
    assumed = (
        f"assumed: {OPTIMIZERS.get(summary.optimizer, summary.optimizer)}; gradients in each tunable weight's dtype; "
        f"an fp32 master copy of each tunable {halves} weight (mixed precision); activations not counted"
    )
    lines.extend(wrap([Token(word, note) for word in assumed.split(" ")], "", INDENT, max(width, 24), note))
    return lines


def _flop_difference(now: int, was: int) -> str:
    change = now - was
    return f"(was {format_flops(was)}, {'+' if change >= 0 else '-'}{format_flops(abs(change))})"


def flop_tokens(node: ModuleNode, styles: Styles, *, folded: bool) -> list[Token]:
    """A counted module's FLOPs in the pass: ``4.72 MFLOPs``, ``over 2 calls`` when it ran more than once (the
    count is their sum), ``each`` on a folded line, and in a comparison what it was where that differs."""
    if node.flops <= 0 and node.flops_was < 0:  # not counted, or nothing the counter counts (a norm, a dropout)
        return []
    tokens = [Token(format_flops(max(node.flops, 0)), styles.foreground)]
    if node.calls > 1:
        tokens.append(Token(f"over {node.calls} calls", styles.note))
    if folded:
        tokens.append(Token("each", styles.folded))
    if node.flops_was >= 0:
        tokens.append(Token(_flop_difference(max(node.flops, 0), node.flops_was), styles.change["changed"]))
    return tokens


#: At most this many operations are named in the FLOPs' summary line; more are left to the total.
OPERATIONS_SHOWN = 4


def flop_summary_lines(summary: FlopSummary, theme: Theme, *, width: int = 100) -> list[Text]:
    """``flops: 22.4 GFLOPs in the pass (addmm 21.7 GFLOPs, bmm 0.60 GFLOPs)``: the pass's total as PyTorch's
    flop counter counts it, each operation's when more than one and few, and in a comparison the earlier total."""
    styles = Styles(theme)
    note = styles.note
    tokens = [Token("flops:", note), Token(format_flops(summary.total), styles.foreground)]
    tokens[-1].append(" in the pass", note)
    if 1 < len(summary.by_operation) <= OPERATIONS_SHOWN:
        parts = [f"{name} {format_flops(count)}" for name, count in summary.by_operation]
        for index, part in enumerate(parts):
            text = ("(" if index == 0 else "") + part + (")" if index == len(parts) - 1 else ",")
            tokens.append(Token(text, note))
    if summary.before >= 0:
        tokens.append(Token(_flop_difference(summary.total, summary.before), styles.change["changed"]))
    return wrap(tokens, "", INDENT, max(width, 24), note)
