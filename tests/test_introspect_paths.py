"""Paths a built tree names things by: a shared module's first place, a tied weight's, the names a delta predicate
is asked about, and a module met again inside itself. Written for what the mutation run (``make mutation``) found
no test of."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sphinx_modelvis import build_tree
from sphinx_modelvis.tree import ModuleNode
from sphinx_modelvis.type_labels import type_labels


def node(root: ModuleNode, path: str) -> ModuleNode:
    for name in path.split("."):
        (root,) = [child for child in root.children if child.name == name]
    return root


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(2))
        self.body = nn.Sequential(nn.Sequential(nn.Linear(2, 2)))
        self.again = self.body[0][0]  # the same module at a second place
        self.head = nn.Linear(2, 2)
        self.head.weight = self.body[0][0].weight  # a weight tied to one two levels down


def test_shared_modules_tied_weights_and_delta_names_are_full_paths() -> None:
    asked: list[str] = []

    def delta(name: str, parameter: torch.Tensor) -> bool:
        asked.append(name)
        return name in ("scale", "head.bias")

    tree = build_tree(Net(), delta=delta)
    assert node(tree.root, "again").shared_with == "body.0.0"
    assert [(param.name, param.tied_to) for param in node(tree.root, "head").params] == [
        ("weight", "body.0.0.weight"),
        ("bias", None),
    ]
    assert "scale" in asked and "head.bias" in asked, "a root parameter is asked about by its bare name"
    assert [param.delta for param in tree.root.params] == [True]
    assert [param.delta for param in node(tree.root, "head").params] == [False, True]


def test_a_module_met_again_inside_itself_stays_without_parameters_of_its_own() -> None:
    # Modules that own no parameter are left out, except one shown again inside the module it points to (it
    # would point at nothing otherwise): the root, from two levels down, and a module from inside itself.
    root = nn.Module()
    root.add_module("a", nn.Module())
    root.a.add_module("b", nn.Module())
    root.a.b.add_module("lin", nn.Linear(2, 2))
    root.a.b.add_module("back", root)
    assert node(build_tree(root).root, "a.b.back").shared_with == ""
    outer = nn.Module()
    outer.add_module("lin", nn.Linear(2, 2))
    outer.add_module("inner", nn.Module())
    outer.inner.add_module("back", outer)
    assert node(build_tree(nn.Sequential(outer)).root, "0.inner.back").shared_with == "0"
    # A module that owns nothing but holds itself: kept for the cycle it shows (it would point at nothing if left
    # out), though nothing in it owns a parameter.
    empty = nn.Module()
    empty.add_module("inner", nn.Module())
    empty.inner.add_module("back", empty)
    assert node(build_tree(nn.Sequential(empty, nn.Linear(2, 2))).root, "0.inner.back").shared_with == "0"


class LoraConfig:
    """A class named like one of PEFT's."""


def test_classes_that_share_a_name_are_told_apart_by_the_package_they_are_imported_from() -> None:
    peft = pytest.importorskip("peft")
    labels = type_labels([peft.LoraConfig, LoraConfig])
    # Defined in peft.tuners.lora.config, imported by users from peft: the shortest package that has it.
    assert labels[peft.LoraConfig] == "peft.LoraConfig"
    assert labels[LoraConfig] == "test_introspect_paths.LoraConfig"
    assert type_labels([nn.Linear]) == {nn.Linear: "Linear"}, "PyTorch's own class alone keeps its bare name"


class Linear(nn.Module):
    """A module named like PyTorch's ``nn.Linear``."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(2))


def test_modules_of_classes_sharing_a_name_are_labelled_and_keep_their_class_path() -> None:
    # A class met once (LayerNorm, Sequential) does not stop the labelling of those that share a name.
    tree = build_tree(nn.Sequential(nn.Linear(2, 2), Linear(), nn.LayerNorm(2)))
    theirs, ours, norm = tree.root.children
    assert (norm.type_label, norm.type_path) == ("", "")
    assert (theirs.type_label, theirs.type_path) == ("", "torch.nn.modules.linear.Linear"), "PyTorch's keeps its name"
    assert (ours.type_label, ours.type_path) == ("test_introspect_paths.Linear", "test_introspect_paths.Linear")
