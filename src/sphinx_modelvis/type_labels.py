"""How figures name module classes: a class that shares its name with another gets the shortest package prefix
that tells them apart (``lora.Linear`` beside ``Linear``)."""

from __future__ import annotations

import sys

from .tree import ModuleNode

__all__ = ["label_same_named_types", "type_labels"]


def _public_module(kind: type) -> str:
    """The shortest package path the class can be imported from (``torch.nn`` for ``nn.Linear``).

    Only modules already imported are looked at; the class's own module when no package above re-exports it.
    """
    parts = kind.__module__.split(".")
    for length in range(1, len(parts)):
        package = sys.modules.get(".".join(parts[:length]))
        if package is not None and getattr(package, kind.__qualname__, None) is kind:
            return ".".join(parts[:length])
    return kind.__module__


def type_labels(kinds: list[type]) -> dict[type, str]:
    """How to show classes that share a name, each with the shortest package prefix that tells it apart.

    ``lora.Linear`` beside ``Linear``: when exactly one of them is PyTorch's own, it keeps its bare name
    (it is what readers take the name to mean); the others get the last parts of the package they are
    imported from, as few as tell them apart (``lora.Linear``, ``mine.Block`` and ``theirs.Block``).
    Classes that nothing tells apart (one defined twice in one module) are numbered: ``Block#2``.
    """
    native = [kind for kind in kinds if kind.__module__.split(".")[0] == "torch"]
    bare = native[0] if len(native) == 1 else None
    rest = [kind for kind in kinds if kind is not bare]
    paths = {kind: _public_module(kind).split(".") for kind in rest}
    longest = max((len(parts) for parts in paths.values()), default=0)

    def labelled(depth: int) -> dict[type, str]:
        return {kind: ".".join([*paths[kind][-depth:], kind.__qualname__]) for kind in rest}

    labels = labelled(1)
    for depth in range(2, longest + 1):
        if len(set(labels.values())) == len(labels):
            break
        labels = labelled(depth)
    if len(set(labels.values())) < len(labels):  # the same path twice: numbered, from the shortest labels
        labels = labelled(1)
    counts: dict[str, int] = {}
    for kind in rest:  # still alike: the same path twice
        label = labels[kind]
        counts[label] = counts.get(label, 0) + 1
        if counts[label] > 1:
            labels[kind] = f"{label}#{counts[label]}"
    if bare is not None:
        labels[bare] = bare.__qualname__
    return labels


def label_same_named_types(nodes_of_type: dict[type, list[ModuleNode]], kinds: list[type]) -> None:
    """Give the nodes of classes that share their name with another class (``lora.Linear`` and ``nn.Linear``,
    say) the class's full path, so they never fold together, and the label figures show; other nodes stay
    without them (smaller trees). ``kinds`` is the class of every place, in model order."""
    by_name: dict[str, list[type]] = {}
    for kind in nodes_of_type:
        by_name.setdefault(kind.__name__, []).append(kind)
    if all(len(group) == 1 for group in by_name.values()):
        return
    first_place: dict[type, int] = {}
    for place, kind in enumerate(kinds):
        first_place.setdefault(kind, place)
    for group in by_name.values():
        if len(group) < 2:
            continue
        group.sort(key=first_place.__getitem__)  # labels numbered in the order the model uses the classes
        labels = type_labels(group)
        for kind in group:
            path = f"{kind.__module__}.{kind.__qualname__}"
            label = labels[kind] if labels[kind] != kind.__name__ else ""
            for node in nodes_of_type[kind]:
                node.type_path = path
                node.type_label = label
