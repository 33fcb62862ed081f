"""Previewing an adapter config on a model, before applying it: the modules it would adapt, keep a trainable copy
of (``modules_to_save``) or leave out (``exclude_modules``), and the parameters it would add.

The matching is PEFT's own, for the installed version: the tuner's ``_prepare_adapter_config`` (its default
``target_modules`` for a known architecture), ``_maybe_include_all_linear_layers`` (``all-linear``, the output
layer left out), and the tuner's ``_check_target_module_exists`` on each module name ``inject_adapter`` would
look at, on a copy of the config: the model is only read. A plain list of names is matched as OpenDelta's
``modified_modules`` were (a name matches a module whose key ends with it, at a dot; ``[r]`` starts a regex).

The marks go on the tree (:attr:`~sphinx_modelvis.tree.ModuleNode.target`) and the counts on
:class:`~sphinx_modelvis.tree.TargetSummary`, so they fold, travel through the JSON and the cache, and are drawn
by every renderer; :func:`target_warnings` reads what a host warns about from the data alone.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from .capture import Capture, TreeBlock
from .errors import ModelvisError
from .folding import format_names
from .target_summary import TargetSummary
from .tree import ModelTree, ModuleNode

__all__ = ["TargetPreview", "annotate_targets", "preview_targets", "target_view", "target_warnings"]

#: The heads PEFT's task models add to ``modules_to_save`` (``PeftModelForSequenceClassification`` and friends,
#: in ``peft_model.py``), by task type: for a sequence classifier before the adapter is injected (so no adapter
#: goes in them), for the others after it.
TASK_HEADS = {"SEQ_CLS": (["classifier", "score"], True), "TOKEN_CLS": (["classifier", "score"], False)}
TASK_HEADS["QUESTION_ANS"] = (["qa_outputs"], False)
#: The adapter families whose added parameters are counted, by PEFT's ``peft_type``, with how a summary names them.
COUNTED = {"LORA": "LoRA", "LOHA": "LoHa", "IA3": "IA³"}
_DIGITS = re.compile(r"(?:(?<=\.)|^)\d+(?=\.|$)")


@dataclass
class TargetPreview:
    """What a config would do to a model, by module key: ``adapted`` (with the parameters each adapter adds,
    ``None`` where not counted), ``saved`` (with the size of the trainable copy), ``excluded``; and the summary."""

    adapted: dict[str, int | None] = field(default_factory=dict)
    saved: dict[str, int] = field(default_factory=dict)
    excluded: list[str] = field(default_factory=list)
    summary: TargetSummary = field(default_factory=TargetSummary)

    def marks(self) -> dict[str, str]:
        """Each marked module's key and its mark (see :data:`~sphinx_modelvis.tree.TARGETS`)."""
        marks = dict.fromkeys(self.excluded, "excluded")
        marks.update(dict.fromkeys(self.saved, "saved"))
        marks.update(dict.fromkeys(self.adapted, "adapted"))
        return marks


def _opendelta_match(key: str, entry: str) -> bool:
    """OpenDelta's ``endswith_in``: ``entry`` is the key's last dotted part(s); ``[r]PATTERN`` a regex that must
    end the key at a dot boundary."""
    if entry.startswith("[r]"):
        found = re.search(entry[3:], key)
        if found is None or found.end() != len(key):
            return False
        matched = found.group()
        return matched == key or key[-len(matched) - 1] == "."
    return key == entry or key.endswith("." + entry)


def _stack_pattern(key: str) -> str:
    """The key with every numbered part replaced: the places of a repeated stack share it."""
    return _DIGITS.sub("#", key)


def _stacks(keys: Iterable[str]) -> dict[str, list[str]]:
    """The keys by their stack pattern (see :func:`_stack_pattern`): worked out once for all entries."""
    stacks: dict[str, list[str]] = {}
    for key in keys:
        stacks.setdefault(_stack_pattern(key), []).append(key)
    return stacks


def _partial(entry: str, matched: Iterable[str], stacks: dict[str, list[str]]) -> list[tuple[str, int, int, str]]:
    """Where ``entry`` matched some places of a repeated stack and not the others alike: per stack pattern, how
    many of how many, and the first varying index of those it matched (``0-5``)."""
    partial: list[tuple[str, int, int, str]] = []
    if any(part.isdecimal() for part in entry.split(".")):  # the entry names its places: part of a stack on purpose
        return partial
    for pattern, hits in _stacks(matched).items():
        alike = stacks.get(pattern, [])
        if "#" in pattern and len(hits) < len(alike):
            numbers = [_DIGITS.findall(key) for key in alike]
            # The index that tells the places apart: the first numbered part that varies (a layer's, not a block's).
            varying = next((at for at in range(len(numbers[0])) if len({row[at] for row in numbers}) > 1), 0)
            indices = sorted({int(_DIGITS.findall(key)[varying]) for key in hits})
            partial.append((entry, len(hits), len(alike), format_names([str(index) for index in indices])))
    return partial


def _bare_tuner(tuner_class: Any) -> Any:
    """An instance of PEFT's tuner class that wraps no model: enough for its config-preparing and matching
    methods, which read class attributes only (``target_module_mapping``). Making a real one would adapt the model."""
    import torch

    tuner = tuner_class.__new__(tuner_class)
    torch.nn.Module.__init__(tuner)
    return tuner


def _entries(config: Any) -> list[str]:
    targets = config.target_modules
    if targets is None:
        return []
    return [targets] if isinstance(targets, str) else sorted(targets)


def _layer_added(config: Any, family: str, key: str, module: Any, tuner: Any) -> int | None:
    """The parameters PEFT's adapter layer of ``family`` adds to ``module``; ``None`` for a layer kind not counted."""
    import torch
    from peft.utils.other import get_pattern_key
    from transformers.pytorch_utils import Conv1D

    if isinstance(module, torch.nn.Linear):
        fan_in, fan_out = module.in_features, module.out_features
    elif isinstance(module, Conv1D):
        fan_in, fan_out = module.weight.shape
    elif isinstance(module, torch.nn.Embedding) and family == "LORA":
        fan_in, fan_out = module.num_embeddings, module.embedding_dim
    else:
        return None
    if family == "IA3":  # one scaling vector: over the inputs of a feed-forward layer, the outputs of the others
        return int(fan_in if tuner._check_target_module_feedforward(config, key) else fan_out)
    rank = config.rank_pattern.get(get_pattern_key(config.rank_pattern.keys(), key), config.r)
    if family == "LOHA":  # two products of a (out, r) and a (r, in) factor
        return int(2 * rank * (fan_in + fan_out))
    added = rank * (fan_in + fan_out)
    if getattr(config, "use_dora", False):  # the magnitude vector
        added += fan_out
    if getattr(config, "lora_bias", False) and not isinstance(module, torch.nn.Embedding):
        added += fan_out
    return int(added)


def _method(config: Any, family: str) -> str:
    name = COUNTED.get(family, family)
    rank = getattr(config, "r", None)
    return f"{name} r={rank}" if isinstance(rank, int) and family != "IA3" else name


def _saved(model: Any, names: Iterable[str]) -> dict[str, int]:
    """The modules ``modules_to_save`` copies (PEFT's ``_set_trainable`` test: a key that ends with a name; the
    outermost of nested matches, whose copy holds the others), each with the parameters of its copy."""
    names = list(names)
    saved: dict[str, int] = {}
    copied: set[int] = set()  # a module reachable from two places is wrapped, and copied, once
    for key, module in model.named_modules(remove_duplicate=False):
        if key and any(key.endswith(name) for name in names):
            if not any(key.startswith(outer + ".") for outer in saved):
                saved[key] = 0 if id(module) in copied else sum(parameter.numel() for parameter in module.parameters())
                copied.add(id(module))
    return saved


def _preview_peft(model: Any, original: Any) -> TargetPreview:
    from peft.mapping import PEFT_TYPE_TO_TUNER_MAPPING
    from peft.tuners.tuners_utils import BaseTuner, BaseTunerLayer, _maybe_include_all_linear_layers

    config: Any = copy.deepcopy(original)  # PEFT's preparation writes the names it works out into the config
    family = str(getattr(config.peft_type, "value", config.peft_type))
    tuner_class = PEFT_TYPE_TO_TUNER_MAPPING.get(config.peft_type)
    if tuner_class is None:
        raise ModelvisError(f"PEFT has no tuner for {family} configs, so there is nothing to preview")
    tuner = _bare_tuner(tuner_class)
    written = config.target_modules
    heads, before = TASK_HEADS.get(str(getattr(config.task_type, "value", config.task_type)), ([], False))
    if heads and hasattr(config, "modules_to_save") and before:
        config.modules_to_save = [*(config.modules_to_save or ()), *heads]
    config = tuner._prepare_adapter_config(config, BaseTuner.get_model_config(model))
    all_linear = isinstance(config.target_modules, str) and config.target_modules.lower() == "all-linear"
    config = _maybe_include_all_linear_layers(config, model)
    named = list(model.named_modules())  # as inject_adapter walks them: a module reachable twice, once
    earlier_adapters = [key + "." for key, module in named if isinstance(module, BaseTunerLayer)]
    keys = [key for key, _ in named if key and not any(key.startswith(prefix) for prefix in earlier_adapters)]
    unrestricted = copy.copy(config)
    unrestricted.exclude_modules, unrestricted.modules_to_save = None, None
    after = heads if heads and hasattr(config, "modules_to_save") and not before else []
    saved = _saved(model, [*(config.modules_to_save or ()), *after])
    preview = TargetPreview(saved=saved)
    counted, uncounted_kinds = family in COUNTED, set()
    for key in keys:
        if tuner._check_target_module_exists(config, key):
            module = model.get_submodule(key)
            added = _layer_added(config, family, key, module, tuner) if family in COUNTED else None
            if added is None and family in COUNTED:
                uncounted_kinds.add(type(module).__name__)
            preview.adapted[key] = added
        elif tuner._check_target_module_exists(unrestricted, key) and not any(
            key == outer or key.startswith(outer + ".") for outer in saved
        ):
            preview.excluded.append(key)
    entries = _entries(config) if not all_linear else []
    stacks = _stacks(keys)
    unmatched, partial = [], []
    for entry in entries:
        single = copy.copy(config)
        single.target_modules = entry if isinstance(config.target_modules, str) else [entry]
        hits = [key for key in preview.adapted if tuner._check_target_module_exists(single, key)]
        if not hits:
            unmatched.append(entry)
        partial.extend(_partial(entry, hits, stacks))
    notes = []
    if all_linear:
        last_names = list(dict.fromkeys(key.rsplit(".", 1)[-1] for key in preview.adapted))
        notes.append(f"all-linear: {', '.join(last_names)}")
    elif written is None and entries:
        notes.append(f"PEFT's default target_modules for this model: {', '.join(entries)}")
    if uncounted_kinds:
        counted = False
        notes.append(f"added parameters not counted for {', '.join(sorted(uncounted_kinds))}")
    if getattr(config, "target_parameters", None):
        notes.append("target_parameters are not previewed")
    added = sum(count or 0 for count in preview.adapted.values()) + sum(saved.values())
    preview.summary = TargetSummary(
        method=_method(config, family),
        adapted=len(preview.adapted),
        saved=len(saved),
        excluded=len(preview.excluded),
        added=added if counted else sum(saved.values()),
        counted=counted,
        unmatched=tuple(unmatched),
        partial=tuple(partial),
        notes=tuple(notes),
    )
    return preview


def _preview_names(model: Any, names: list[str]) -> TargetPreview:
    keys = [key for key, _ in model.named_modules() if key]
    preview = TargetPreview()
    stacks = _stacks(keys)
    unmatched, partial = [], []
    for entry in names:
        hits = [key for key in keys if _opendelta_match(key, entry)]
        for key in hits:
            preview.adapted[key] = None
        if not hits:
            unmatched.append(entry)
        partial.extend(_partial(entry, hits, stacks))
    preview.summary = TargetSummary(adapted=len(preview.adapted), unmatched=tuple(unmatched), partial=tuple(partial))
    return preview


def preview_targets(model: Any, spec: Any) -> TargetPreview:
    """What ``spec`` would do to ``model``, which is only read.

    ``spec`` is a PEFT config with ``target_modules`` (``LoraConfig``, ``IA3Config``, ``LoHaConfig``, ...), or a
    name or a list of names as OpenDelta's ``modified_modules`` took them. Raises
    :class:`~sphinx_modelvis.errors.ModelvisError` for anything else.
    """
    if isinstance(spec, str):
        return _preview_names(model, [spec])
    if isinstance(spec, (list, tuple, set, frozenset)) and all(isinstance(name, str) for name in spec):
        return _preview_names(model, list(spec))
    if hasattr(spec, "peft_type") and hasattr(spec, "target_modules"):
        return _preview_peft(model, spec)
    kind = type(spec).__name__
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    raise ModelvisError(
        f"the targets are {article} {kind}: give a PEFT config with target_modules (LoraConfig(...)), "
        "or a list of module names as OpenDelta's modified_modules"
    )


def annotate_targets(tree: ModelTree, marks: dict[str, str], summary: TargetSummary) -> ModelTree:
    """``tree`` (of the previewed model) with each module at a key of ``marks`` marked, and ``summary``.

    Nodes a built tree shares between places are copied only where a mark lands below them, so the places that
    are marked alike still fold, and the places marked differently (layers 0-5 adapted, 6-11 not) do not.
    """
    copies: dict[str, ModuleNode] = {}
    places = tree.root.places(leaves_first=True)
    marked_below = {""} if marks else set()
    for key in marks:
        parts = key.split(".")
        marked_below.update(".".join(parts[:index]) for index in range(1, len(parts) + 1))
    for path, node in places:
        if path not in marked_below:
            copies[path] = node
            continue
        children = [copies[f"{path}.{child.name}" if path else child.name] for child in node.children]
        copies[path] = replace(node, children=children, target=marks.get(path, ""))
    return tree.with_root(copies[""], targets=summary)


def target_view(model: Any, tree: ModelTree, spec: Any) -> ModelTree:
    """``tree`` (of ``model``) marked with what ``spec`` would do to it (see :func:`preview_targets`)."""
    preview = preview_targets(model, spec)
    return annotate_targets(tree, preview.marks(), preview.summary)


def target_warnings(capture: Capture) -> list[str]:
    """What a host warns about for a figure (read from its data, so a cached figure warns too): the entries of
    ``target_modules`` that matched nothing, in each previewed tree it shows."""
    warnings = []
    for block in capture.blocks:
        summary = block.tree.targets if isinstance(block, TreeBlock) else None
        if summary is not None and summary.unmatched:
            names = ", ".join(f"'{entry}'" for entry in summary.unmatched)  # as written (a regex's backslashes single)
            one = len(summary.unmatched) == 1
            if summary.method:
                what = f"{summary.method}: the target_modules {'entry' if one else 'entries'}"
            else:
                what = "the name" if one else "the names"
            warnings.append(f":targets: {what} {names} matched no module of the model")
    return warnings
