"""Running one snippet in a namespace: compiled under the docs file and line, output captured, traceback trimmed.

Shared by the worker process (Sphinx and MkDocs figures) and the command line.
"""

from __future__ import annotations

import ast
import io
import linecache
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from types import TracebackType
from typing import Any

from ..capture import Capture, PrintedText, TreeBlock
from ..config import TreeSettings  # declared with the figure options; the worker's too
from ..errors import ForwardError, NotAModule, SnippetError

__all__ = [
    "CaptureStream",
    "TreeSettings",
    "captured_output",
    "evaluate_module",
    "last_module_name",
    "module_block",
    "run_snippet",
    "show_snippet",
]


#: The tree settings of a figure that sets none.
DEFAULT_TREE = TreeSettings()


class CaptureStream(io.TextIOBase):
    """A ``sys.stdout`` that records text into a :class:`Capture`, at most ``max_lines`` lines a run (0: all).

    ``Visualization.structure_graph()`` hands its tree to :meth:`modelvis_add_tree` instead of
    printing it, so the figure draws the tree itself (in the figure's theme, guides as lines).
    """

    def __init__(self, capture: Capture, *, max_lines: int = 0, columns: int = 100) -> None:
        super().__init__()
        self.capture = capture
        self.printed = PrintedText(max_lines=max_lines, columns=columns)
        # ``print`` looks ``write`` up on each call: found here, it is the collector's own method,
        # one Python call per write (a print flood makes millions).
        self.write = self.printed.write  # type: ignore[method-assign]

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def modelvis_add_tree(self, block: TreeBlock) -> None:
        self.end_text()
        self.capture.blocks.append(block)

    def end_text(self) -> None:
        """Add what was printed since the last tree (if anything) to the capture."""
        text = self.printed.block()
        if text is not None:
            self.capture.blocks.append(text)


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def captured_output(*, columns: int = 100, max_lines: int = 0) -> Iterator[Capture]:
    """Send ``sys.stdout`` into a fresh :class:`Capture` for the duration.

    ``COLUMNS`` is the figure's width and ``FORCE_COLOR`` is set, so rich output a snippet prints
    itself keeps its colors and wraps where the figure does. ``max_lines`` caps each run of printed
    text (its first and last lines are kept); 0 keeps everything.
    """
    capture = Capture()
    stream = CaptureStream(capture, max_lines=max_lines, columns=columns)
    saved = sys.stdout
    sys.stdout = stream
    try:
        with _environment(COLUMNS=str(columns), FORCE_COLOR="1", COLORTERM="truecolor", TERM="xterm-256color"):
            yield capture
    finally:
        stream.flush()
        stream.end_text()
        sys.stdout = saved


def _register_source(code: str, filename: str, first_line: int) -> None:
    """Let tracebacks show the snippet's lines at their docs line numbers (several snippets share a page)."""
    entry: tuple[Any, ...] | None = linecache.cache.get(filename)
    lines = list(entry[2]) if entry is not None and len(entry) == 4 and entry[1] is None else []
    snippet = code.splitlines(keepends=True)
    end = first_line - 1 + len(snippet)
    if len(lines) < end:
        lines.extend("\n" for _ in range(end - len(lines)))
    lines[first_line - 1 : end] = [line if line.endswith("\n") else line + "\n" for line in snippet]
    linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)


def _snippet_error(exc: BaseException, filename: str) -> SnippetError:
    """The exception as a :class:`SnippetError`: traceback from the snippet's first frame down, and its docs line."""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    line = None
    walk = tb
    while walk is not None:
        if walk.tb_frame.f_code.co_filename == filename:
            line = walk.tb_lineno
        walk = walk.tb_next
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        line = exc.lineno
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    summary = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return SnippetError(summary, traceback=text, filename=filename, line=line)


def _device(device: str | None) -> Any:
    if not device:
        return nullcontext()
    import torch

    return torch.device(device)


def run_snippet(
    code: str,
    namespace: dict[str, Any],
    *,
    filename: str = "<snippet>",
    first_line: int = 1,
    device: str | None = None,
) -> None:
    """Execute ``code`` in ``namespace``; its line ``k`` is reported as ``first_line + k - 1`` of ``filename``.

    ``device="meta"`` runs it under ``torch.device("meta")``, so models are built without memory
    for their weights. Any exception becomes a :class:`SnippetError` carrying the snippet's own
    traceback lines and the docs line that raised.
    """
    padded = "\n" * (first_line - 1) + code
    _register_source(code, filename, first_line)
    try:
        compiled = compile(padded, filename, "exec", dont_inherit=True)
        with _device(device):
            exec(compiled, namespace)
    except SystemExit as exc:
        # Not an error the snippet raised: say what it did, at the line of the call (the innermost snippet frame).
        line = _snippet_error(exc, filename).line
        raise SnippetError(
            f"the snippet called sys.exit({exc.code!r})", filename=filename, line=line, traceback=""
        ) from None
    except BaseException as exc:  # KeyboardInterrupt and the like, raised by the snippet, are its errors too
        raise _snippet_error(exc, filename) from None


def _bound_names(body: list[ast.stmt]) -> Iterator[str]:
    """Names bound at the top level of a module body, in source order."""

    def targets(node: ast.AST) -> Iterator[str]:
        if isinstance(node, ast.Name):
            yield node.id
        elif isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                yield from targets(element)
        elif isinstance(node, ast.Starred):
            yield from targets(node.value)

    for statement in body:
        if isinstance(statement, ast.Assign):
            for target in statement.targets:
                yield from targets(target)
        elif isinstance(statement, (ast.AnnAssign, ast.AugAssign)):
            yield from targets(statement.target)
        elif isinstance(statement, (ast.For, ast.AsyncFor)):
            yield from targets(statement.target)
            yield from _bound_names(statement.body)
            yield from _bound_names(statement.orelse)
        elif isinstance(statement, (ast.With, ast.AsyncWith)):
            for item in statement.items:
                if item.optional_vars is not None:
                    yield from targets(item.optional_vars)
            yield from _bound_names(statement.body)
        elif isinstance(statement, ast.If | ast.While):
            yield from _bound_names(statement.body)
            yield from _bound_names(statement.orelse)
        elif isinstance(statement, ast.Try):
            yield from _bound_names(statement.body)
            for handler in statement.handlers:
                yield from _bound_names(handler.body)
            yield from _bound_names(statement.orelse)
            yield from _bound_names(statement.finalbody)
        elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.NamedExpr):
            yield from targets(statement.value.target)


def last_module_name(code: str, namespace: dict[str, Any]) -> str | None:
    """The last top-level name the snippet binds that now holds a ``torch.nn.Module``."""
    from ..introspect import is_module

    try:
        body = ast.parse(code).body
    except SyntaxError:
        return None
    for name in reversed(list(_bound_names(body))):
        if is_module(namespace.get(name)):
            return name
    return None


def evaluate_module(expr: str, namespace: dict[str, Any], *, filename: str = "<expression>", line: int = 1) -> Any:
    """Evaluate ``expr`` in ``namespace``; it must give a ``torch.nn.Module``."""
    from ..introspect import is_module

    try:
        # Compiled at ``line`` so that a traceback points at the docs line, not at line 1 of the page,
        # and shows the expression there.
        _register_source(expr, filename, line)
        value = eval(compile("\n" * max(line - 1, 0) + expr, filename, "eval", dont_inherit=True), namespace)
    except Exception as exc:
        error = _snippet_error(exc, filename)
        error.line = error.line or line
        raise error from None
    if not is_module(value):
        kind = type(value).__name__
        article = "an" if kind[:1].lower() in "aeiou" else "a"
        raise NotAModule(f"`{expr}` is {article} {kind}, not a torch.nn.Module, so it has no tree to show")
    return value


def module_block(
    module: Any,
    settings: TreeSettings,
    *,
    namespace: dict[str, Any] | None = None,
    device: str | None = None,
    line: int = 1,
) -> TreeBlock:
    """The tree of ``module`` as a figure block; with ``settings.inputs``, its forward view: the inputs are
    evaluated in ``namespace`` under ``device`` and errors are reported at ``line`` (the figure's)."""
    from ..introspect import build_tree

    tree = build_tree(
        module,
        keep_non_params=settings.keep_non_params,
        expand_params=settings.expand_params,
        show_buffers=settings.show_buffers,
    )
    if settings.inputs:
        tree = _forward_view(module, tree, settings.inputs, namespace or {}, device, line, flops=settings.flops)
    if settings.memory:
        from ..precision import memory_view

        tree = memory_view(module, tree, training=settings.memory == "training", optimizer=settings.optimizer)
    if settings.targets:
        tree = _target_view(module, tree, settings.targets, namespace or {}, line)
    if settings.device_map or settings.tp_plan or settings.max_memory:
        tree = _placement_view(module, tree, settings, namespace or {}, line)
    return TreeBlock(tree, rootname=settings.rootname, max_depth=settings.max_depth)


#: The name tracebacks give the targets expression (``:targets:``, ``--targets``).
TARGETS_FILENAME = "<targets>"


def _evaluate(
    expr: str, filename: str, namespace: dict[str, Any], line: int, *, what: str, device: str | None = None
) -> Any:
    """The value of a figure option's expression (``:inputs:``, ``:targets:``) in the page's namespace, under
    ``device``; an error is the snippet's, named ``filename`` in its traceback, at the directive's ``line``."""
    try:
        _register_source(expr, filename, 1)
        with _device(device):
            return eval(compile(expr, filename, "eval", dont_inherit=True), namespace)
    except Exception as exc:
        error = _snippet_error(exc, filename)
        error.args = (f"the {what} `{expr}` could not be evaluated: {error}",)
        error.line = line
        raise error from None


def _target_view(module: Any, tree: Any, expr: str, namespace: dict[str, Any], line: int) -> Any:
    """The adapter preview of ``module``: what the config ``expr`` gives would touch (the model is only read)."""
    from ..errors import ModelvisError
    from ..targets import target_view

    spec = _evaluate(expr, TARGETS_FILENAME, namespace, line, what="targets")
    try:
        return target_view(module, tree, spec)
    except ModelvisError as exc:
        raise SnippetError(f"the targets `{expr}`: {exc}", filename="", line=line, traceback="") from None
    except Exception as exc:  # PEFT refused the config (no target_modules and no default for this model, ...)
        message = f"the targets `{expr}` could not be previewed: {type(exc).__name__}: {exc}"
        raise SnippetError(message, filename="", line=line, traceback="") from None


#: The name tracebacks give the placement expressions (``:device-map:``, ``:max-memory:``).
PLACEMENT_FILENAME = "<placement>"


def _placement_view(module: Any, tree: Any, settings: TreeSettings, namespace: dict[str, Any], line: int) -> Any:
    """The placement view of ``module``: its device map (the dict and ``max_memory`` expressions evaluated in the
    page's namespace) or its tensor-parallel plan; a failure is an error at the figure's line."""
    from ..placement import DEVICE_MAP_MODES, OWN_MAP, placement_view
    from ..tensor_plan import tensor_plan_view

    values: dict[str, Any] = {"device_map": settings.device_map, "max_memory": None}
    for name, expr in (("device_map", settings.device_map), ("max_memory", settings.max_memory)):
        if expr and expr not in (*DEVICE_MAP_MODES, OWN_MAP):
            try:
                _register_source(expr, PLACEMENT_FILENAME, 1)
                values[name] = eval(compile(expr, PLACEMENT_FILENAME, "eval", dont_inherit=True), namespace)
            except Exception as exc:
                error = _snippet_error(exc, PLACEMENT_FILENAME)
                error.args = (f"the {name.replace('_', '-')} `{expr}` could not be evaluated: {error}",)
                error.line = line
                raise error from None
    try:
        if settings.tp_plan:
            if settings.device_map:
                raise ValueError("a tensor-parallel plan and a device map can't be shown together (nor loaded)")
            return tensor_plan_view(module, tree, settings.tp_plan)
        return placement_view(module, tree, values["device_map"], values["max_memory"])
    except Exception as exc:  # a map accelerate refused, a model without a plan, ...
        message = f"the placement could not be shown: {type(exc).__name__}: {exc}"
        raise SnippetError(message, filename="", line=line, traceback="") from None


#: The name tracebacks give the inputs expression (``:inputs:``, ``--inputs``).
INPUTS_FILENAME = "<inputs>"


def _forward_view(
    module: Any, tree: Any, expr: str, namespace: dict[str, Any], device: str | None, line: int, *, flops: bool = False
) -> Any:
    """The forward view of ``module``: one traced pass on the value of ``expr`` (with ``flops``, counted)."""
    from ..tracing import counted_forward_view, forward_view

    inputs = _evaluate(expr, INPUTS_FILENAME, namespace, line, what="inputs", device=device)
    try:
        return (counted_forward_view if flops else forward_view)(module, tree, inputs)
    except Exception as exc:
        raise _forward_error(exc, line) from None


def _forward_error(exc: BaseException, line: int) -> ForwardError:
    """A forward pass that raised, as a :class:`ForwardError` with the model's own frames: ours, and torch's
    module-calling machinery between every two of them, left out."""
    ours = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not os.path.abspath(frame.filename).startswith(ours + os.sep)
        and not (
            frame.filename.endswith(os.path.join("torch", "nn", "modules", "module.py")) and "call_impl" in frame.name
        )
    ]
    text = "Traceback (most recent call last):\n" + "".join(traceback.format_list(frames))
    text += "".join(traceback.format_exception_only(type(exc), exc))
    summary = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return ForwardError(f"the forward pass raised {summary}", traceback=text, filename="", line=line)


def show_snippet(
    code: str,
    namespace: dict[str, Any],
    *,
    filename: str = "<snippet>",
    first_line: int = 1,
    expr: str | None = None,
    expr_line: int | None = None,
    settings: TreeSettings = DEFAULT_TREE,
    device: str | None = None,
    columns: int = 100,
    max_lines: int = 0,
) -> Capture:
    """Run a figure's snippet and return what the figure shows.

    With ``expr`` (written at ``expr_line`` of ``filename``, by default the snippet's first line): the
    tree of that expression, evaluated after the snippet. Without: what the
    snippet printed (``print(model)``, ``structure_graph()``, any rich output), or if it printed
    nothing, the tree of the last ``torch.nn.Module`` it bound to a top-level name. Printed text keeps at
    most ``max_lines`` lines a run, its first and last ones (0: all).
    """
    with captured_output(columns=columns, max_lines=max_lines) as capture:
        run_snippet(code, namespace, filename=filename, first_line=first_line, device=device)
    if expr:
        module = evaluate_module(expr, namespace, filename=filename, line=expr_line or first_line)
        return Capture([module_block(module, settings, namespace=namespace, device=device, line=expr_line or 1)])
    if not capture.empty:
        return capture
    name = last_module_name(code, namespace)
    if name is None:
        raise NotAModule(
            "the snippet printed nothing and bound no torch.nn.Module to a top-level name: "
            "print something, or name the model as the directive's argument"
        )
    return Capture([module_block(namespace[name], settings, namespace=namespace, device=device, line=expr_line or 1)])
