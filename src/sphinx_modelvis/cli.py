"""The `modelvis` command (also `python -m sphinx_modelvis`): render a snippet's model, or check a file for drift."""

from __future__ import annotations

import argparse
import shlex
import sys
import tokenize
from collections.abc import Callable, Sequence
from contextlib import redirect_stdout
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from .errors import ModelvisError, NotAModule, SnippetError
from .memory import MEMORY_MODES, OPTIMIZERS
from .placement import DEVICE_MAP_MODES, OWN_MAP, device_map_option, tp_ranks

if TYPE_CHECKING:
    from .capture import TreeBlock

__all__ = ["main"]

SUFFIX_FORMATS = {".svg": "svg", ".png": "png", ".html": "html", ".htm": "html", ".txt": "text", ".ansi": "ansi"}
FORMAT_CHOICES = ("svg", "png", "html", "txt", "text", "ansi")

EXIT_OK, EXIT_DRIFT, EXIT_ERROR = 0, 1, 2
#: The width lines are laid out to in files and piped output (a terminal's own width when printing to one).
DEFAULT_WIDTH = 100
#: What a PNG cut short says (a PNG keeps no more lines than image libraries open).
CLI_HINT = "--max-depth N draws a shorter tree"


def _declared(option: str) -> Callable[[str], Any]:
    """An argument type that reads a value as the figure option ``option`` does, with the same rule."""
    from .config import OPTION_SPEC

    return _said(OPTION_SPEC[option])


class _LineParser(argparse.ArgumentParser):
    """The parser of a manifest's line: a mistake is an error naming the line, not the end of the program."""

    def error(self, message: str) -> NoReturn:
        raise ModelvisError(message)


def _parser(kind: type[argparse.ArgumentParser] = argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser = kind(
        prog="modelvis",
        description=(
            "Run a Python snippet that builds a PyTorch model and render the model's folded tree "
            "(SVG, PNG, HTML, text or ANSI). With --check, compare with an existing file instead of writing it."
        ),
        epilog="exit status: 0 ok (or up to date), 1 --check found a difference, 2 the snippet or the arguments "
        "failed. `modelvis cache size|prune [--max-age DAYS] [FOLDER]` looks after a figure cache (see "
        "`modelvis cache --help`).",
    )
    parser.add_argument(
        "snippet",
        nargs="*",
        metavar="SNIPPET",
        help="Python file to run (it builds the model); or SNIPPET:OUT, one for each figure, to check "
        "(or write) several figures with the same options",
    )
    parser.add_argument(
        "--model",
        metavar="EXPR",
        help="expression, evaluated after the snippet, giving the module to show "
        "(default: the last torch.nn.Module the snippet bound to a top-level name)",
    )
    parser.add_argument("-o", "--output", type=Path, metavar="OUT", help="file to write; no -o prints to the terminal")
    parser.add_argument(
        "--format", choices=FORMAT_CHOICES, help="output format (default: from OUT's suffix; svg if it has none)"
    )
    parser.add_argument("--theme", choices=("dark", "light"), default="dark", help="color theme (default: dark)")
    parser.add_argument(
        "--width",
        type=_declared("columns"),
        default=None,
        help="width lines wrap at (default: the terminal's width when printing to a terminal; 100 in a file "
        "or when piped); a word longer than the width (a long key) runs past it, uncut",
    )
    parser.add_argument("--keep-non-params", action="store_true", help="keep modules without parameters")
    parser.add_argument("--expand-params", action="store_true", help="one line per parameter")
    parser.add_argument("--show-buffers", action="store_true", help="show buffers too")
    parser.add_argument("--max-depth", type=_declared("max-depth"), metavar="N", help="cut the tree below depth N")
    parser.add_argument("--rootname", default="root", help="label of the root line (default: root)")
    parser.add_argument(
        "--device", choices=("meta", "cpu"), help="run the snippet under torch.device(DEVICE) (meta: no weights)"
    )
    parser.add_argument("--check", action="store_true", help="compare with OUT and report drift instead of writing")
    parser.add_argument(
        "--manifest",
        type=Path,
        metavar="FILE",
        help="a file of figures, one a line: SNIPPET -o OUT [options] (or SNIPPET:OUT [options]); "
        "blank lines and lines starting with # are skipped",
    )
    parser.add_argument(
        "--compare",
        metavar="BEFORE",
        help="another snippet (the model before a change, e.g. before adding adapters): draw SNIPPET's model "
        "marked against BEFORE's: + added, - removed, ~ changed",
    )
    parser.add_argument(
        "--compare-model", metavar="EXPR", help="the module of BEFORE to compare with (default: its last nn.Module)"
    )
    parser.add_argument("--changes-only", action="store_true", help="with --compare: leave out unchanged subtrees")
    parser.add_argument(
        "--inputs",
        metavar="EXPR",
        help="the forward view: run the model once on EXPR (a tensor, a tuple or a dict, evaluated after the "
        "snippet, under --device) and show call order, output shapes and call counts",
    )
    parser.add_argument(
        "--flops",
        action="store_true",
        help="with --inputs: each module's FLOPs in the pass (all its calls summed), counted by PyTorch's flop "
        "counter (attention included), and the pass's total",
    )
    parser.add_argument(
        "--memory",
        nargs="?",
        const="weights",
        choices=MEMORY_MODES,
        help="the memory view: each module's bytes of parameters and buffers (by dtype when mixed) and the "
        "totals; `--memory training` adds gradients, optimizer state and fp32 master weights",
    )
    parser.add_argument(
        "--optimizer",
        choices=tuple(OPTIMIZERS),
        default="adam",
        help="with --memory training: the optimizer whose state is counted (default: adam)",
    )
    parser.add_argument(
        "--targets",
        metavar="EXPR",
        help="preview an adapter config before applying it: EXPR (evaluated after the snippet) is a PEFT config "
        "or a list of module names; marks the modules it would adapt, save and exclude, and counts what it adds",
    )
    parser.add_argument(
        "--device-map",
        nargs="?",
        const=OWN_MAP,
        type=_said(device_map_option),
        metavar="MODE|EXPR",
        help=f"the placement view: {', '.join(DEVICE_MAP_MODES)} (accelerate's infer_auto_device_map for the "
        "devices of --max-memory), a dict expression, or no value for the model's own hf_device_map",
    )
    parser.add_argument(
        "--max-memory",
        metavar="EXPR",
        help='with --device-map: the devices and their memory, e.g. \'{0: "40GiB", 1: "40GiB", "cpu": "200GiB"}\'',
    )
    parser.add_argument(
        "--tp-plan",
        type=_said(tp_ranks),
        metavar="RANKS",
        help="show a transformers model's tensor-parallel plan: each planned module's style and shard shapes on RANKS",
    )
    return parser


def _said(parse: Any) -> Any:
    """``parse`` as an argparse type whose ``ValueError`` shows its message (argparse hides a plain one's)."""

    def convert(value: str) -> Any:
        try:
            return parse(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _format_for(args: argparse.Namespace) -> str | None:
    """The output format: ``--format``, else OUT's suffix (svg when it has none); ``None`` for the terminal."""
    if args.format:
        return "text" if args.format == "txt" else str(args.format)
    if args.output is None:
        return None
    suffix = args.output.suffix.lower()
    if not suffix:
        return "svg"
    if suffix not in SUFFIX_FORMATS:
        known = ", ".join(sorted(SUFFIX_FORMATS))
        raise ModelvisError(f"cannot tell the format of {args.output} from its suffix (known: {known}); give --format")
    return SUFFIX_FORMATS[suffix]


class _Failed(Exception):
    """A snippet that could not give a tree; what went wrong is already printed."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _snippet_tree(
    snippet: str,
    model: str | None,
    model_flag: str,
    args: argparse.Namespace,
    *,
    inputs: str | None = None,
    targets: str | None = None,
) -> TreeBlock:
    """Run ``snippet`` in a namespace of its own, as ``python SNIPPET`` would (``sys.argv == [SNIPPET]``), and
    take the tree of ``model`` (an expression) or of the last module it bound (its forward view on ``inputs``, an
    expression, when given); errors are printed and raise :class:`_Failed`."""
    from .execution.snippet import TreeSettings, evaluate_module, last_module_name, module_block, run_snippet

    try:
        # As Python reads a source file: its coding cookie (`# -*- coding: latin-1 -*-`) or BOM, else UTF-8.
        with tokenize.open(snippet) as stream:
            code = stream.read()
    except OSError as exc:
        print(f"modelvis: cannot read {snippet}: {exc.strerror}", file=sys.stderr)
        raise _Failed(EXIT_ERROR) from None
    except (SyntaxError, UnicodeDecodeError) as exc:  # an unknown coding, or bytes that are not in it
        print(f"modelvis: cannot read {snippet} as Python source: {exc}", file=sys.stderr)
        raise _Failed(EXIT_ERROR) from None
    settings = TreeSettings(
        keep_non_params=args.keep_non_params,
        expand_params=args.expand_params,
        show_buffers=args.show_buffers,
        max_depth=args.max_depth,
        rootname=args.rootname,
        inputs=inputs,
        flops=bool(args.flops) and inputs is not None,
        memory=args.memory or "",
        optimizer=args.optimizer,
        targets=targets,
        device_map=args.device_map or "",
        max_memory=args.max_memory,
        tp_plan=args.tp_plan,
    )
    namespace = {"__name__": "__main__", "__file__": snippet}
    # As `python SNIPPET.py` would: modules next to the snippet are importable, and `sys.argv` is
    # `[SNIPPET]`, the path as given (a snippet that parses arguments must not see modelvis's own).
    folder = str(Path(snippet).resolve().parent)
    sys.path.insert(0, folder)
    own_argv = sys.argv
    sys.argv = [snippet]
    try:
        # What the snippet prints goes to stderr, so the figure alone reaches stdout.
        with redirect_stdout(sys.stderr):
            run_snippet(code, namespace, filename=snippet, device=args.device)
        if model:
            try:
                module = evaluate_module(model, namespace, filename=model_flag)
            except SnippetError as exc:
                raise NotAModule(f"{model_flag} {model} could not be evaluated: {exc}") from None
        else:
            name = last_module_name(code, namespace)
            if name is None:
                raise NotAModule(
                    f"{snippet} binds no torch.nn.Module to a top-level name; say which one with {model_flag} EXPR"
                )
            module = namespace[name]
        return module_block(module, settings, namespace=namespace, device=args.device)
    except SnippetError as exc:
        print(exc.traceback or str(exc), file=sys.stderr, end="" if exc.traceback else "\n")
        print(f"modelvis: {snippet} raised {exc}", file=sys.stderr)
        raise _Failed(EXIT_ERROR) from None
    except ModelvisError as exc:
        print(f"modelvis: {exc}", file=sys.stderr)
        raise _Failed(EXIT_ERROR) from None
    finally:
        sys.argv = own_argv
        sys.path.remove(folder)


def _split_pairs(args: argparse.Namespace) -> list[argparse.Namespace]:
    """One namespace per figure of ``args``: SNIPPET (with -o OUT) or SNIPPET:OUT pairs, the options shared."""
    if not args.snippet:
        return []
    if args.output is not None:
        if len(args.snippet) > 1:
            raise ModelvisError("-o OUT goes with one SNIPPET; give several figures as SNIPPET:OUT pairs")
        return [argparse.Namespace(**{**vars(args), "snippet": args.snippet[0]})]
    figures = []
    for text in args.snippet:
        snippet, colon, output = text.rpartition(":")
        if not colon or not snippet or not output or Path(text).exists():
            if len(args.snippet) > 1:
                raise ModelvisError(f"{text}: give each of several figures as SNIPPET:OUT")
            return [argparse.Namespace(**{**vars(args), "snippet": text})]
        figures.append(argparse.Namespace(**{**vars(args), "snippet": snippet, "output": Path(output)}))
    return figures


def _figures(args: argparse.Namespace) -> list[argparse.Namespace]:
    """Every figure the command line names: its own, then the manifest's (each line's options its own)."""
    figures = _split_pairs(args)
    if args.manifest is None:
        if not figures:
            raise ModelvisError("give a SNIPPET to run (or --manifest FILE)")
        return figures
    try:
        lines = args.manifest.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ModelvisError(f"cannot read {args.manifest}: {exc.strerror}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            own = _parser(_LineParser).parse_args(shlex.split(line))
            if own.manifest is not None:
                raise ModelvisError("a manifest does not name another manifest")
            own.check = own.check or args.check
            found = _split_pairs(own)
        except (ModelvisError, ValueError) as exc:  # ValueError: shlex's unclosed quote
            raise ModelvisError(f"{args.manifest}, line {number}: {exc}") from None
        figures.extend(found)
    if not figures:
        raise ModelvisError(f"{args.manifest} names no figure")
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (with several figures, the worst of theirs).

    ``modelvis cache ...`` looks after a figure cache (see :mod:`~sphinx_modelvis.cache_command`); a snippet file
    named ``cache`` is drawn as ``modelvis ./cache``.
    """
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["cache"]:
        from .cache_command import cache_main

        return cache_main(given[1:])
    args = _parser().parse_args(given)
    try:
        figures = _figures(args)
    except ModelvisError as exc:
        print(f"modelvis: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if len(figures) == 1 and args.manifest is None:
        return _one_figure(figures[0])
    # Every figure is checked (or written), so CI lists all that drifted in one run.
    statuses = [_one_figure(figure) for figure in figures]
    drifted, failed = statuses.count(EXIT_DRIFT), statuses.count(EXIT_ERROR)
    verb = "checked" if any(figure.check for figure in figures) else "drew"
    counted = f"{len(figures)} figure{'s' if len(figures) > 1 else ''}"
    print(
        f"modelvis: {verb} {counted}: {len(figures) - drifted - failed} ok, {drifted} out of date, {failed} failed",
        file=sys.stderr,
    )
    return max(statuses)


def _one_figure(args: argparse.Namespace) -> int:
    """Draw one figure (``args.snippet`` a path, as given): print it, write it, or check it against ``args.output``."""
    if args.check and args.output is None:
        print("modelvis: --check needs -o OUT, the committed file to compare with", file=sys.stderr)
        return EXIT_ERROR
    try:
        fmt = _format_for(args)
    except ModelvisError as exc:
        print(f"modelvis: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if (args.compare_model or args.changes_only) and args.compare is None:
        print("modelvis: --compare-model and --changes-only go with --compare BEFORE", file=sys.stderr)
        return EXIT_ERROR
    if args.flops and args.inputs is None:
        print("modelvis: --flops counts a forward pass: give --inputs EXPR too", file=sys.stderr)
        return EXIT_ERROR

    from .capture import Capture

    try:
        # Under --flops the earlier model runs on the inputs too, so that the figure shows what the FLOPs were.
        earlier_inputs = args.inputs if args.flops else None
        before = None
        if args.compare:
            before = _snippet_tree(args.compare, args.compare_model, "--compare-model", args, inputs=earlier_inputs)
        block = _snippet_tree(args.snippet, args.model, "--model", args, inputs=args.inputs, targets=args.targets)
        if before is not None:
            from .compare import compare_trees

            block = replace(block, tree=compare_trees(before.tree, block.tree, changes_only=args.changes_only))
    except _Failed as exc:
        return exc.status
    capture = Capture([block])
    from .targets import target_warnings

    for warning in target_warnings(capture):  # entries of target_modules that matched nothing
        print(f"modelvis: {args.snippet}: warning: {warning}", file=sys.stderr)
    from .rendering import build_figure, render_figure

    if args.output is None and fmt is None:
        from rich.console import Console

        # Laid out to the terminal's width when printing to one; piped, to the documented default.
        width = args.width or (None if sys.stdout.isatty() else DEFAULT_WIDTH)
        console = Console(width=width, highlight=False, markup=False, emoji=False)
        figure = build_figure(capture, theme=args.theme, width=console.width)
        for line in figure.lines:
            # soft_wrap: never cut a line. A word wider than the layout (a long key in a note) runs past
            # it whole, for the terminal to wrap, so a reader copying it gets all of it.
            console.print(line, soft_wrap=True)
        return EXIT_OK
    figure = build_figure(capture, theme=args.theme, width=args.width or DEFAULT_WIDTH)
    if args.output is None:
        assert fmt is not None  # the terminal case (no -o, no --format) returned above
        out = render_figure(figure, fmt, hint=CLI_HINT)
        if isinstance(out, bytes):
            sys.stdout.buffer.write(out)
        else:
            sys.stdout.write(out)
        return EXIT_OK
    assert fmt is not None
    out = render_figure(figure, fmt, hint=CLI_HINT)
    if args.check:
        if not args.output.exists():
            print(f"{args.output}: missing; run the same command without --check to create it", file=sys.stderr)
            return EXIT_DRIFT
        from .drift import describe_drift, same_pixels

        current = args.output.read_bytes()
        if current == (out if isinstance(out, bytes) else out.encode("utf-8")):
            print(f"{args.output}: up to date")
            return EXIT_OK
        if isinstance(out, bytes) and same_pixels(current, out):
            # Another Pillow or zlib encodes the same image in other bytes: that is not drift.
            print(f"{args.output}: up to date (the same pixels, encoded differently)")
            return EXIT_OK
        print(describe_drift(args.output, out, fmt), file=sys.stderr)
        return EXIT_DRIFT
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(out, bytes):
        args.output.write_bytes(out)
    else:
        args.output.write_text(out, encoding="utf-8", newline="\n")
    print(f"{args.output}: written ({fmt})", file=sys.stderr)
    return EXIT_OK
