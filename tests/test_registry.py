"""Adding a data set and a model family from outside the package: registries only, no edits."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from torch import nn

from recurdepth.data.registry import DatasetSpec, get_dataset, list_datasets, register_dataset
from recurdepth.errors import ConfigError
from recurdepth.models.blocks import LinearUnit
from recurdepth.models.registry import build_model, register_family
from recurdepth.models.unrolled import UnrolledNet
from recurdepth.training.config import RunConfig, apply_overrides, protocol_dict, resolve
from recurdepth.training.run import train_run
from recurdepth.data.tasks import TASKS, get_task, register_task, task_of
from recurdepth.data.options import DataOption, at_least
from recurdepth.data.tasks.classification import Classification

CLASSES, SIDE = 3, 6


def toy_loader(name, root, split, *, size=None, limit=None, download=False):
    """Class k images are filled with 40 + 80·k plus noise: learnable in a few steps."""
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    n = 60 if split == "train" else 30
    labels = torch.arange(n) % CLASSES
    noise = torch.randint(0, 20, (n, 1, SIDE, SIDE), generator=g)
    images = (40 + 80 * labels.view(-1, 1, 1, 1) + noise).to(torch.uint8)
    return images[:limit], labels[:limit]


def build_toy(mode: str, iters: int, width: int, dataset: str, scale: int = 1) -> UnrolledNet:
    info = get_dataset(dataset)
    w = width * scale
    stem = nn.Sequential(nn.Flatten(), nn.Linear(info.in_channels * info.image_size**2, w),
                         nn.ReLU())
    return UnrolledNet(family="toy_mlp", mode=mode, dataset=dataset, iters=iters, stem=stem,
                       make_unit=lambda slots: LinearUnit(w), head=nn.Linear(w, info.num_classes))


class ToyUnaugmented(Classification):
    """A new kind of task: plain labels, never augmented, recurrent learning rate divided."""

    name = "toy_unaugmented"
    augmented = False
    divide_recurrent_lr = True


@pytest.fixture(autouse=True, scope="module")
def toy_registrations():
    """The toy data set and family exist only while this module's tests run (no leaks)."""
    from recurdepth.data import registry as data_registry
    from recurdepth.models import registry as model_registry

    register_dataset(DatasetSpec("toy_levels", 1, SIDE, CLASSES, "classification", toy_loader,
                                 12, mean=(0.5,), std=(0.25,), hflip=True))
    # A new kind of task: plain labels, never augmented, recurrent learning rate divided.
    register_task(ToyUnaugmented)
    register_dataset(DatasetSpec("toy_plain", 1, SIDE, CLASSES, "toy_unaugmented", toy_loader,
                                 12, mean=(0.5,), std=(0.25,), hflip=True))
    # A data set with options of its own.
    register_dataset(DatasetSpec(
        "toy_opts", 1, SIDE, CLASSES, "classification", toy_loader, 12, mean=(0.5,),
        std=(0.25,), options={"levels": DataOption(4, "grey levels", rule=at_least(2)),
                              "noise": DataOption(None, "noise std", kind=float, nullable=True)}))
    register_family("toy_mlp", description="test family: MLP whose width is scaled by an option",
                    datasets=("toy_levels", "toy_plain", "toy_opts"), depth_base=2,
                    depth_per_iter=1, default_width={"toy_levels": 4, "toy_plain": 4,
                                                     "toy_opts": 4}, paper_depths=(3, 4),
                    options={"scale": 1})(build_toy)
    yield
    data_registry._DATASETS.pop("toy_levels", None)
    data_registry._DATASETS.pop("toy_plain", None)
    data_registry._DATASETS.pop("toy_opts", None)
    TASKS.pop("toy_unaugmented", None)
    model_registry._FAMILIES.pop("toy_mlp", None)


def toy_config(tmp_path, *over: str) -> RunConfig:
    return apply_overrides(RunConfig(), [
        "model.family=toy_mlp", "model.iters=1", "data.name=toy_levels", f"data.root={tmp_path}",
        "train.epochs=3", "optim.warmup_epochs=0", "runtime.device=cpu",
        "runtime.progress=false", *over])


def test_a_data_set_and_a_family_option_added_through_the_registries_train(tmp_path):
    assert "toy_levels" in list_datasets()
    cfg = resolve(toy_config(tmp_path, "model.options.scale=2"))
    # Every default comes from the record: batch size, augmentation, task.
    assert (cfg.train.batch_size, cfg.data.hflip, cfg.data.crop_padding) == (12, True, 0)
    assert cfg.model.options == {"scale": 2} and not cfg.task.per_pixel
    assert task_of("toy_levels") is get_task("classification")
    result = train_run(toy_config(tmp_path, "model.options.scale=2"), tmp_path / "run")
    # Linear(36→8) + Linear(8→8) + Linear(8→3): the option doubled the width 4.
    assert result["parameters"] == (36 * 8 + 8) + (8 * 8 + 8) + (8 * 3 + 3)
    assert result["status"] == "completed" and result["test_acc"] > 50.0
    plain = build_model("toy_mlp", "recurrent", iters=1, dataset="toy_levels")
    assert plain.num_parameters == (36 * 4 + 4) + (4 * 4 + 4) + (4 * 3 + 3)


def test_a_new_kind_of_task_trains_through_its_task_record(tmp_path):
    cfg = resolve(toy_config(tmp_path, "data.name=toy_plain"))
    # The task, not the data set's defaults, decides augmentation and the recurrent lr rule.
    assert (cfg.data.hflip, cfg.data.crop_padding, cfg.optim.recur_lr_divide) == (False, 0, True)
    assert cfg.task is get_task("toy_unaugmented") and cfg.example_sizes() == ()
    assert cfg.name.startswith("toy_mlp-recurrent-i1-toy_plain-s0-")
    # A maze option (old or new key) on a data set without it: one line naming the valid ones.
    for key in ("data.maze_shift=2", "data.options.shift=2"):
        with pytest.raises(ConfigError, match=r"^unknown option\(s\) shift for data set "
                           r"'toy_plain' \(data\.options\) \(shift is an option of mazes\); "
                           r"valid options: none$"):
            resolve(toy_config(tmp_path, "data.name=toy_plain", key))
    with pytest.raises(ConfigError, match="data set 'toy_plain' is not augmented"):
        resolve(toy_config(tmp_path, "data.name=toy_plain", "data.hflip=true"))
    with pytest.raises(ValueError, match="valid choices: .*toy_unaugmented"):
        DatasetSpec("bad", 1, SIDE, CLASSES, "no_such_task", toy_loader, 12)
    result = train_run(toy_config(tmp_path, "data.name=toy_plain"), tmp_path / "run")
    assert result["status"] == "completed" and result["test_acc"] > 50.0
    assert result["maze_size"] is None and "eval_maze_acc" not in result


def test_a_data_set_declares_and_checks_its_own_options(tmp_path):
    cfg = resolve(toy_config(tmp_path, "data.name=toy_opts", "data.options.noise=1"))
    assert cfg.data.options == {"levels": 4, "noise": 1.0}
    assert cfg.data_option("levels") == 4
    for bad, msg in [("data.options.levels=1", r"^data\.options\.levels must be >= 2, got 1$"),
                     ("data.options.levels=x", r"^data\.options\.levels: expected int"),
                     ("data.options.colour=1", r"^unknown option\(s\) colour for data set "
                                               r"'toy_opts' .*valid options: levels, noise$")]:
        with pytest.raises(ConfigError, match=msg):
            resolve(toy_config(tmp_path, "data.name=toy_opts", bad))
    # Options without an older name are part of the identity under their own key.
    a = resolve(toy_config(tmp_path, "data.name=toy_opts"))
    b = resolve(toy_config(tmp_path, "data.name=toy_opts", "data.options.levels=8"))
    assert protocol_dict(b)["data.options.levels"] == 8 and a.name != b.name


def test_family_options_are_checked_with_the_valid_names(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown option\(s\) depth .*valid options: scale"):
        resolve(toy_config(tmp_path, "model.options.depth=2"))
    with pytest.raises(ConfigError, match="valid options: none"):
        resolve(apply_overrides(RunConfig(), ["model.iters=1", "model.options.scale=2",
                                              "runtime.device=cpu"]))
    with pytest.raises(ConfigError, match="data set .*toy_levels"):
        get_dataset("no_such_set")


def test_dilation_key_and_option_are_the_same_model():
    old = resolve(apply_overrides(RunConfig(), ["model.family=maze_dilated", "model.iters=2",
                                                "model.dilation=3", "runtime.device=cpu"]))
    new = resolve(apply_overrides(RunConfig(), ["model.family=maze_dilated", "model.iters=2",
                                                "model.options.dilation=3", "runtime.device=cpu"]))
    assert old.model.options == new.model.options == {"dilation": 3} and old.name == new.name


def _module_imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Package modules imported at module level by ``path`` (lazy imports in functions excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in tree.body:  # module level only: imports inside functions run later, no cycle
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("recurdepth"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                # `from pkg import submodule` needs the submodule, not the package's names.
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("recurdepth"))
    return found


def test_the_package_has_no_import_cycle():
    """The graph of module-level imports inside the package has no cycle."""
    import recurdepth

    package = Path(recurdepth.__file__).parent
    modules = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph = {m: {i for i in _module_imports(p, modules) if i in modules and i != m}
             for m, p in modules.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = stack[stack.index(n):] + [n]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert len(modules) > 50


def test_a_plug_in_module_registers_its_task_and_data_set_in_one_file(tmp_path):
    """A new kind of problem as one module (what data/registry.py's PLUGINS imports)."""
    import subprocess
    import sys

    (tmp_path / "toy_plugin.py").write_text(
        "from recurdepth.data.registry import DatasetSpec, register_dataset\n"
        "from recurdepth.data.tasks import DenseTask, register_task\n"
        "from recurdepth.data.options import DataOption\n\n"
        "@register_task\n"
        "class Bits(DenseTask):\n"
        "    name = 'toy_bits'\n"
        "    spatial_dims = 1\n"
        "    augmented = False\n"
        "    input_range = 1.0\n\n"
        "register_dataset(DatasetSpec('toy_bits', 1, 8, 2, 'toy_bits', 'toy_plugin:load', 10,\n"
        "                             options={'length': DataOption(8, 'bits per string')}))\n")
    code = ("import toy_plugin\n"
            "from recurdepth.data.tasks import task_of\n"
            "from recurdepth.training.config import RunConfig\n"
            "t = task_of('toy_bits')\n"
            "print(t.name, t.outputs_per_sample(2, 8), t.chance(2),\n"
            "      RunConfig.from_dict({'data': {'name': 'toy_bits'}}).data_option('length'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["toy_bits", "16", "0.0", "8"]
