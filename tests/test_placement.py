"""The placement view against the engines it runs: accelerate's device maps for a small Llama on the meta device
(module by module), dict maps, a model's own ``hf_device_map``, modules split across devices, and transformers'
tensor-parallel plan (each rank's shard checked against transformers' own styles on a fake 8-rank process group)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import torch
from accelerate.utils import get_balanced_memory, get_max_memory, infer_auto_device_map
from test_models import LLAMA_70B
from transformers import LlamaConfig, LlamaForCausalLM

from sphinx_modelvis import Visualization
from sphinx_modelvis.tree import ModelTree

pytestmark = pytest.mark.slow

#: Four layers of 28 KiB each (fp32), a 16 KiB embedding and head: small enough to fill a few small devices.
SMALL = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 8,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 128,
}


def small_llama(**changes: Any) -> LlamaForCausalLM:
    with torch.device("meta"):
        return LlamaForCausalLM(LlamaConfig(**{**SMALL, **changes}))


def placed(model: torch.nn.Module, **options: Any) -> tuple[ModelTree, list[str]]:
    figure = Visualization(model).structure_graph(printTree=False, **options)
    return figure.tree, str(figure.render("text", width=120)).splitlines()


def devices_by_path(tree: ModelTree) -> dict[str, str]:
    return {path: node.device for path, node in tree.root.places()}


def accelerate_map(model: torch.nn.Module, mode: str, max_memory: dict[Any, Any]) -> dict[str, Any]:
    """The map ``from_pretrained(device_map=mode, max_memory=...)`` makes, with accelerate's functions called here."""
    no_split = sorted(model._no_split_modules)
    if mode == "sequential":
        limits = get_max_memory(dict(max_memory))
    else:
        limits = get_balanced_memory(
            model, max_memory=dict(max_memory), no_split_module_classes=no_split, low_zero=mode == "balanced_low_0"
        )
    return infer_auto_device_map(model, max_memory=limits, no_split_module_classes=no_split)


MEMORIES = {
    "2 devices": {0: "150KiB", 1: "150KiB", "cpu": "1GiB"},
    "3 devices": {0: "90KiB", 1: "90KiB", 2: "90KiB", "cpu": "1GiB"},
    "4 devices and cpu": {0: "50KiB", 1: "50KiB", 2: "50KiB", 3: "50KiB", "cpu": "1GiB"},
    # Room to spare: auto balances over the three, balanced_low_0 leaves device 0 empty, sequential fills 0.
    "3 roomy devices": {0: "1MiB", 1: "1MiB", 2: "1MiB"},
}


@pytest.mark.parametrize("mode", ["auto", "balanced_low_0", "sequential"])
@pytest.mark.parametrize("memory", list(MEMORIES))
def test_each_module_is_on_the_device_accelerate_puts_it(mode: str, memory: str) -> None:
    model = small_llama()
    expected = accelerate_map(model, mode, MEMORIES[memory])
    if mode != "sequential" or memory != "3 roomy devices":
        assert len(set(expected.values())) > 1, "the case spreads the model over devices"
    tree, lines = placed(model, device_map=mode, max_memory=MEMORIES[memory])
    shown = devices_by_path(tree)
    for name, device in expected.items():  # each entry, and every module below it, on its device
        for path, devices in shown.items():
            if path == name or path.startswith(name + "."):
                assert devices == str(device), (path, devices, device)
    # Folded lines split where the device changes: one line per run of layers on one device.
    layers = [expected.get(f"model.layers.{index}", expected.get("model.layers")) for index in range(8)]
    runs: list[tuple[int, int, Any]] = []
    for index, device in enumerate(layers):
        if runs and runs[-1][2] == device:
            runs[-1] = (runs[-1][0], index, device)
        else:
            runs.append((index, index, device))
    heads = [line.split("── ", 1)[1] for line in lines if "(LlamaDecoderLayer)" in line]
    written = [f"{start}-{end}" if end > start else f"{start}" for start, end, _device in runs]
    assert [head.split(" (")[0] for head in heads] == written
    if len(runs) > 1:
        assert [head.rsplit("@", 1)[1].split()[0] for head in heads] == [str(device) for *_, device in runs]


def test_balanced_low_0_keeps_device_0_free() -> None:
    tree, _lines = placed(small_llama(), device_map="balanced_low_0", max_memory=MEMORIES["3 roomy devices"])
    assert tree.root.device == "1,2"
    tree, _lines = placed(small_llama(), device_map="auto", max_memory=MEMORIES["3 roomy devices"])
    assert tree.root.device == "0,1,2"


def test_the_map_is_the_one_from_pretrained_makes() -> None:
    from transformers.integrations.accelerate import _get_device_map

    model = small_llama()
    memory = MEMORIES["4 devices and cpu"]
    tree, _lines = placed(model, device_map="balanced", max_memory=memory)
    theirs = _get_device_map(model, "balanced", dict(memory), None)
    shown = devices_by_path(tree)
    drawn = [name for name in theirs if name in shown]  # all but model.rotary_emb (buffers only: not drawn)
    assert len(drawn) == len(theirs) - 1
    assert all(shown[name] == str(theirs[name]) for name in drawn)


def test_llama_70b_on_four_40_gib_devices_as_from_pretrained_places_it() -> None:
    """transformers 5 carries its own copy of accelerate's functions (its balanced buffer counts the biggest leaf
    where accelerate's counts the mean leaf): for the tutorial's case, both give the same map."""
    from transformers.integrations.accelerate import _get_device_map

    config = LlamaConfig(**{**LLAMA_70B, "vocab_size": 32000})  # Llama 2 70B's vocabulary, as the tutorial's
    with torch.device("meta"):
        model = LlamaForCausalLM._from_config(config, dtype=torch.bfloat16)
    memory = {device: "40GiB" for device in range(4)}
    tree, _lines = placed(model, device_map="auto", max_memory=memory)
    theirs = _get_device_map(model, "auto", dict(memory), None)
    shown = devices_by_path(tree)
    assert all(shown[name] == str(device) for name, device in theirs.items() if name in shown)
    assert [shown[f"model.layers.{index}"] for index in (0, 19, 20, 40, 41, 61, 62, 79)] == list("00112233")


def test_the_summary_gives_the_bytes_on_each_device() -> None:
    model = small_llama()
    tree, lines = placed(model, device_map="auto", max_memory=MEMORIES["2 devices"])
    assert tree.placement is not None
    by_device = dict(tree.placement.by_device)
    expected = accelerate_map(model, "auto", MEMORIES["2 devices"])
    sizes: dict[str, int] = {}
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        owner = max((key for key in expected if name == key or name.startswith(key + ".")), key=len)
        device = str(expected[owner])
        sizes[device] = sizes.get(device, 0) + tensor.numel() * tensor.element_size()
    assert by_device == sizes
    assert "no-split: LlamaDecoderLayer" in " ".join(lines)
    assert any(line.startswith("devices: @0 ") and " of 150.0 KiB" in line for line in lines)


def test_a_dict_map_and_a_module_split_across_devices() -> None:
    model = small_llama(num_hidden_layers=2, attention_bias=True)
    device_map = {
        "model.embed_tokens": 0,
        "model.rotary_emb": 0,
        "model.layers.0": 0,
        "model.layers.1.self_attn.q_proj.weight": 0,  # its bias on 1: the module's own parameters split
        "model.layers.1": 1,
        "model.norm": 1,
        "lm_head": "cpu",
    }
    tree, lines = placed(model, device_map=device_map)
    shown = devices_by_path(tree)
    assert shown["model.layers.1.self_attn.q_proj"] == "0,1"
    assert tree.root.children[0].children[1].children[1].split == "no-split", "a LlamaDecoderLayer across 0 and 1"
    q_proj = [line for line in lines if "q_proj" in line]
    assert any("q_proj (Linear) ⚠ parameters split across 0,1 weight:[32, 32]" in line for line in q_proj), q_proj
    assert any("── 1 (LlamaDecoderLayer) ⚠ no-split module split across 0,1" in line for line in lines), lines
    assert "⚠ 2 modules split across devices" in lines
    assert any(line.startswith("placement: the device map given") for line in lines)
    with pytest.raises(ValueError, match=r"places `lm_head.weight` on no device"):
        placed(model, device_map={key: value for key, value in device_map.items() if key != "lm_head"})


def test_a_model_dispatched_by_accelerate_shows_its_own_map(tmp_path: Any) -> None:
    from accelerate import dispatch_model

    model = LlamaForCausalLM(LlamaConfig(**{**SMALL, "num_hidden_layers": 2}))
    device_map = {"model": "cpu", "lm_head": "disk"}
    dispatch_model(model, device_map=device_map, offload_dir=str(tmp_path))
    assert model.hf_device_map == device_map
    tree, lines = placed(model, device_map=True)
    assert tree.placement is not None and tree.placement.source == "hf_device_map"
    assert lines[0] == "root @cpu,disk"
    assert any(line.startswith("└── lm_head (Linear) @disk") for line in lines)
    assert any(line.startswith("placement: the model's hf_device_map") for line in lines)
    with pytest.raises(ValueError, match="has no hf_device_map"):
        placed(small_llama(), device_map=True)


def test_a_mode_needs_the_devices_it_plans_for() -> None:
    with pytest.raises(ValueError, match=r"needs max_memory"):
        placed(small_llama(), device_map="auto")
    with pytest.raises(ValueError, match=r"max_memory is given without a device map"):
        placed(small_llama(), max_memory={0: "1GiB"})
    with pytest.raises(ValueError, match=r"can't be shown together"):
        placed(small_llama(), device_map="auto", max_memory={0: "1GiB"}, tp_plan=2)


#: Run in a child process: each rank's shard of each planned parameter, made by transformers' own styles
#: (``shard_param``) on a fake process group of RANKS ranks (torch's testing backend: no devices, no network).
ENGINE = textwrap.dedent(
    """
    import json, sys, torch, torch.distributed as dist
    from torch.testing._internal.distributed.fake_pg import FakeStore
    from torch.distributed.device_mesh import init_device_mesh
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.distributed.parallel_utils import ALL_PARALLEL_STYLES

    config, ranks = json.loads(sys.argv[1]), int(sys.argv[2])
    shapes = {}
    for rank in range(ranks):
        dist.init_process_group("fake", store=FakeStore(), rank=rank, world_size=ranks)
        mesh = init_device_mesh("cpu", (ranks,))
        with torch.device("meta"):
            model = LlamaForCausalLM(LlamaConfig(**config))
        plan = model._expand_parallel_plan(model.tp_plan)
        modules = dict(model.named_modules())
        for name, style in plan.items():
            path, _, param = name.rpartition(".")
            if name in modules or param not in modules[path]._parameters:
                continue
            ALL_PARALLEL_STYLES[style].shard_param(modules[path], param, mesh)
            tensor = modules[path]._parameters[param]
            local = tensor.to_local() if hasattr(tensor, "to_local") else tensor
            shapes.setdefault(name, []).append(list(local.shape))
        dist.destroy_process_group()
    print(json.dumps(shapes))
    """
)


def engine_shards(config: dict[str, Any], ranks: int) -> dict[str, list[list[int]]]:
    done = subprocess.run(
        [sys.executable, "-c", ENGINE, json.dumps(config), str(ranks)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({}, id="divisible"),
        # 60 wide, 6 heads of 10, 2 key-value heads: 20 rows of k_proj over 8 ranks are 3 on 0-5, 2 on 6, 0 on 7.
        pytest.param(
            {"hidden_size": 60, "num_attention_heads": 6, "intermediate_size": 150, "vocab_size": 1001},
            id="not-divisible",
        ),
    ],
)
def test_each_ranks_shard_is_the_one_transformers_makes(changes: dict[str, Any]) -> None:
    config = {**SMALL, "num_hidden_layers": 2, **changes}
    tree, lines = placed(small_llama(**changes, num_hidden_layers=2), tp_plan=8)
    shown = {
        f"{path}.{name}" if path else name: [list(shape) for shape in shapes]
        for path, node in tree.root.places()
        for name, _style, shapes in node.shards
    }
    assert shown == engine_shards(config, 8)
    if changes:
        assert any(
            "k_proj,v_proj (Linear) weight:[20, 60] colwise: weight [3, 60] on 0-5, [2, 60] on 6, [0, 60] on 7" in line
            for line in lines
        ), lines
    else:
        assert any("q_proj (Linear) weight:[32, 32] colwise: weight [4, 32] each" in line for line in lines), lines
        assert any("o_proj (Linear) weight:[32, 32] rowwise: weight [32, 4] each" in line for line in lines), lines


def test_the_bytes_each_rank_holds() -> None:
    model = small_llama(num_hidden_layers=2)
    tree, lines = placed(model, tp_plan=8)
    assert tree.placement is not None and tree.placement.ranks == 8
    # Every tensor the plan shards holds 1/8 of itself on each rank; the norms and the rotary buffer are whole.
    sharded = whole = 0
    planned = model._expand_parallel_plan(model.tp_plan)
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        size = tensor.numel() * tensor.element_size()
        if name in planned:
            sharded += size
        else:
            whole += size
    assert tree.placement.by_rank == (sharded // 8 + whole,) * 8
    assert any(
        line.startswith("per rank: ") and line.endswith("each (shards, and every tensor the plan leaves whole)")
        for line in lines
    )


def test_a_model_without_a_plan_is_an_error() -> None:
    with pytest.raises(ValueError, match="Sequential has no tensor-parallel plan"):
        placed(torch.nn.Sequential(torch.nn.Linear(2, 2)), tp_plan=2)


def test_a_placed_tree_round_trips_through_json_and_compares() -> None:
    model = small_llama(num_hidden_layers=2)
    for options in (
        {"device_map": "auto", "max_memory": {0: "60KiB", 1: "60KiB", "cpu": "1GiB"}},
        {"tp_plan": 3},
    ):
        tree, _lines = placed(model, **options)
        assert ModelTree.from_json(tree.to_json()) == tree, options
    before = Visualization(model).structure_graph(printTree=False)
    compared = Visualization(model).structure_graph(
        printTree=False, compare=before, device_map={"model": 0, "lm_head": 1}, memory=True
    )
    lines = str(compared.render("text", width=120)).splitlines()
    assert lines[0].startswith("  root @0,1 "), "the compared figure keeps its devices"
    assert any(line.startswith("  └── lm_head (Linear) @1 ") for line in lines), lines


def test_any_module_is_placed_without_no_split_classes() -> None:
    model = torch.nn.Sequential(*[torch.nn.Linear(64, 64) for _ in range(6)])  # 16.25 KiB each
    tree, _lines = placed(model, device_map="sequential", max_memory={0: "40KiB", 1: "40KiB", 2: "1MiB"})
    expected = infer_auto_device_map(model, max_memory=get_max_memory({0: "40KiB", 1: "40KiB", 2: "1MiB"}))
    assert len(set(expected.values())) == 3
    shown = devices_by_path(tree)
    assert {name: shown[name] for name in expected} == {name: str(device) for name, device in expected.items()}
    assert tree.placement is not None and tree.placement.no_split == ()
