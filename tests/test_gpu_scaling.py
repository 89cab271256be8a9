"""Issue 21 on the CPU: K runs per GPU (faked GPU count), TF32 stated, the compiled static-shape
step equal to the eager one, evaluation at a large batch on a GPU."""

from __future__ import annotations

import json
import os
import time

import pytest
import torch
import yaml

from recurdepth.cli import main
from recurdepth.data.augment import AugmentConfig, TensorBatches
from recurdepth.data.mazes import generate_dataset, maze_dir
from recurdepth.data.mazes.dataset import load_maze_split
from recurdepth.data.tasks import get_task
from recurdepth.errors import ConfigError
from recurdepth.experiments import ResultStore
from recurdepth.experiments.executors import LocalExecutor, Task, default_runs_per_gpu
from recurdepth.experiments.spec import load_experiment
from recurdepth.models import build_model
from recurdepth.training.compiled import StaticShapeModel, compile_for_training
from recurdepth.training.config import RunConfig, apply_overrides, resolve
from recurdepth.training.loop import train_epoch

GIB = 1 << 30


def _record_gpus(config, run_dir, *, progress=False):
    """A single-run function that reports which GPUs its worker was given, and when."""
    start = time.time()
    time.sleep(1.0)
    return {"status": "completed", "gpus": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "pid": os.getpid(), "start": start, "end": time.time()}


def _execute_recording(train_fn, config, run_dir, *, progress=False, threads=None, capture=False):
    return {"ok": True, "result": train_fn(config, run_dir, progress=progress)}


# ---------------------------------------------------------------- K runs per GPU

def test_two_runs_per_gpu_pin_two_workers_to_each_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    ex = LocalExecutor(None, progress=False, gpu_count=2, runs_per_gpu=2, threads_per_run=1)
    assert ex.max_parallel == 4 and ex.worker_slots == ["3", "5", "3", "5"]
    tasks = [Task(f"id{i}", f"run{i}", {}, f"/nonexistent/{i}") for i in range(8)]
    outcomes = []
    monkeypatch.setattr("recurdepth.experiments.executors.execute_task", _execute_recording)
    ex.execute(tasks, _record_gpus, lambda t: None, lambda t, o: outcomes.append(o["result"]))
    assert len(outcomes) == 8
    by_pid: dict[int, set] = {}
    for o in outcomes:
        by_pid.setdefault(o["pid"], set()).add(o["gpus"])
    assert all(len(g) == 1 for g in by_pid.values())  # a worker keeps its GPU
    workers_per_gpu: dict[str, int] = {}
    for gpus in by_pid.values():
        (gpu,) = gpus
        workers_per_gpu[gpu] = workers_per_gpu.get(gpu, 0) + 1
    assert workers_per_gpu == {"3": 2, "5": 2}
    for a in outcomes:  # at no moment do more than two runs share a GPU
        at_once = [b for b in outcomes if b["gpus"] == a["gpus"]
                   and b["start"] <= a["start"] < b["end"]]
        assert len(at_once) <= 2


def test_runs_per_gpu_bad_values_are_refused():
    with pytest.raises(ConfigError, match="--runs-per-gpu must be >= 1"):
        LocalExecutor(None, gpu_count=1, runs_per_gpu=0)
    with pytest.raises(ConfigError, match="--runs-per-gpu needs a GPU"):
        LocalExecutor(None, gpu_count=0, runs_per_gpu=2)
    assert LocalExecutor(None, gpu_count=0).max_parallel == 1  # a CPU machine: one run


def test_ray_shares_a_gpu_through_fractional_num_gpus():
    from recurdepth.experiments.executors import RayExecutor, make_executor

    ray = make_executor("ray", num_gpus=1.0, runs_per_gpu=4)
    assert isinstance(ray, RayExecutor) and ray.num_gpus == 0.25
    assert "0.25 GPU(s) and 1 CPU(s) per run, 4 run(s) per GPU" in ray.describe_placement([])
    with pytest.raises(ConfigError, match="does not combine with --gpus-per-run"):
        make_executor("ray", runs_per_gpu=2, gpus_per_run=2)
    with pytest.raises(ConfigError, match="--runs-per-gpu is for --executor local and ray"):
        make_executor("slurm", runs_per_gpu=2)


def _maze_config(depth: int, width: int, batch: int) -> dict:
    return {"model": {"family": "maze", "mode": "feedforward", "width": width,
                      "effective_depth": depth},
            "data": {"name": "mazes", "maze_size": 9},
            "train": {"batch_size": batch, "eval_batch_size": batch},
            "runtime": {"device": "cpu"}}


def test_default_runs_per_gpu_from_memory_and_cpu_cores():
    # SPEC: feed-forward maze solver, depth 44: 5,941,008 parameters; size-9 mazes are 24 px;
    # weights, gradients, momentum and slack 4 x params, two fp32 feature maps per layer
    # (budget.training_bytes), plus a process's CUDA context (1 GiB).
    big = _maze_config(44, 128, 50)
    per_run = 4.0 * (4 * 5_941_008 + 2 * 50 * 128 * 24 * 24 * 44) + GIB
    k, why = default_runs_per_gpu([big, _maze_config(8, 128, 50)], gpu_memory=16 * GIB,
                                  cpus=64, gpus=1)
    assert k == int(0.9 * 16 * GIB // per_run) == 6  # the largest run decides
    assert "6 run(s) per GPU" in why and "2.3 GiB per run of 16 GiB" in why
    small = _maze_config(8, 32, 50)
    assert default_runs_per_gpu([small], gpu_memory=140 * GIB, cpus=16, gpus=1)[0] == 8
    assert default_runs_per_gpu([small], gpu_memory=140 * GIB, cpus=16, gpus=4)[0] == 4  # cores
    assert default_runs_per_gpu([big], gpu_memory=2 * GIB, cpus=16, gpus=1)[0] == 1  # at least 1


@pytest.fixture(scope="module")
def maze_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mazes")
    generate_dataset(maze_dir(root, 5), size=5, n_train=45, n_test=10, progress=False)
    return root


def test_sweep_on_a_gpu_machine_says_and_records_the_placement(maze_root, tmp_path, monkeypatch,
                                                             capsys):
    experiment = {
        "name": "packed", "trials": 1,
        "base": {"seed": 0, "model": {"family": "maze", "width": 4, "effective_depth": 8},
                 "data": {"name": "mazes", "maze_size": 5, "root": str(maze_root)},
                 "optim": {"name": "adam", "recur_lr_divide": False, "lr": 0.002,
                           "weight_decay": 0.0, "warmup_epochs": 0, "milestones": []},
                 "train": {"epochs": 1, "batch_size": 15, "eval_every": 0},
                 "runtime": {"device": "cpu", "threads": 1}},
        "grid": {"model.mode": ["recurrent", "feedforward"]},
    }
    path = tmp_path / "packed.yaml"
    path.write_text(yaml.safe_dump(experiment))
    # One (faked) GPU of 16 GiB: the default packs both tiny runs on it, one worker each.
    monkeypatch.setattr("recurdepth.training.launch.visible_gpu_count", lambda: 1)
    monkeypatch.setattr("recurdepth.experiments.executors._gpu_memory", lambda: 16 * GIB)
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--no-progress", "--report"]) == 0
    text = capsys.readouterr()
    assert "placement: 8 run(s) per GPU on 1 GPU slot(s) (0), 2 at once" in text.out + text.err
    with ResultStore.open_existing(out / "results.sqlite") as store:
        assert store.meta()["placement"].startswith("8 run(s) per GPU")
        run_dirs = [r.run_dir for r in store.records()]
    for run_dir in run_dirs:
        env = json.loads((run_dir / "env.json").read_text())
        assert env["cuda_visible_devices"] == "0" and env["placement"].startswith("8 run(s)")
    index = (out / "report" / "index.md").read_text()
    assert "Runs placed by the latest sweep: 8 run(s) per GPU" in index


# ---------------------------------------------------------------- TF32 and GPU defaults

def _cfg(**over) -> RunConfig:
    return apply_overrides(RunConfig(), {"model.family": "maze", "model.effective_depth": 8,
                                         "model.width": 4, "data.name": "mazes",
                                         "data.maze_size": 5, **over})


def test_tf32_and_compile_defaults_per_device(monkeypatch):
    cpu = resolve(_cfg())
    assert cpu.runtime.tf32 is False and cpu.runtime.compile_mode == "default"
    assert cpu.train.eval_batch_size == 2 * cpu.train.batch_size
    monkeypatch.setattr("recurdepth.training.config.resolve_device", lambda d: "cuda")
    gpu = resolve(_cfg())
    assert gpu.runtime.tf32 is True and gpu.runtime.compile_mode == "reduce-overhead"
    assert gpu.train.eval_batch_size == 500  # batch 50: evaluated 500 at a time on a GPU
    assert resolve(_cfg(**{"runtime.tf32": "off"})).runtime.tf32 is False
    # The paper presets compute in full fp32 (the authors' GPUs had no TF32).
    for name in ("fig5_mazes_small", "fig2_cifar10", "table1", "table2_dilated"):
        run = load_experiment(name).runs()[0]
        assert resolve(run.config).runtime.tf32 is False, name
    with pytest.raises(ConfigError, match="runtime.tf32: expected true, false or auto"):
        resolve(_cfg(**{"runtime.tf32": "sometimes"}))
    with pytest.raises(ConfigError, match="runtime.compile_mode.*reduce-overhead"):
        resolve(_cfg(**{"runtime.compile_mode": "fastest"}))


def test_tf32_recorded_in_config_and_env(maze_root, tmp_path):
    from recurdepth.training.run import set_tf32, tf32_state

    run_dir = tmp_path / "run"
    code = main(["train", "--run-dir", str(run_dir), "model.family=maze", "model.iters=1",
                 "model.width=4", f"data.root={maze_root}", "data.maze_size=5",
                 "train.epochs=1", "train.batch_size=15", "runtime.tf32=on",
                 "runtime.progress=false"])
    assert code == 0
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["requested"]["runtime"]["tf32"] == "on"
    assert saved["resolved"]["runtime"]["tf32"] is True
    env = json.loads((run_dir / "env.json").read_text())
    assert env["tf32"] is False  # a CPU has no TF32 units: what ran was fp32
    before = tf32_state()
    try:
        set_tf32(False)
        assert tf32_state() == {"cudnn_conv": False, "matmul": False}
        assert not torch.backends.cudnn.allow_tf32
    finally:
        set_tf32(before["cudnn_conv"])


# ---------------------------------------------------------------- compiled step == eager step

def _epoch(model: torch.nn.Module, train_model: torch.nn.Module, batches: TensorBatches) -> list:
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=2e-4)
    for epoch in range(2):
        batches.set_epoch(epoch)
        stats = train_epoch(train_model, batches, opt, task=get_task("maze"), progress=False)
        assert stats.finite and stats.samples == 45
    return [p.detach().clone() for p in model.parameters()]


def test_compiled_static_shape_step_gives_the_eager_weights(maze_root):
    split = load_maze_split(maze_root, 5, "train")
    inputs, targets = split.inputs, split.solutions
    # 45 mazes at batch 10: four full batches (compiled) and a last one of 5 (eager), shifted.
    batches = TensorBatches(inputs, targets, batch_size=10, shuffle=True,
                            augment=AugmentConfig(shift=2), seed=3)
    torch.manual_seed(0)
    eager = build_model("maze", "recurrent", iters=2, width=4)
    compiled = build_model("maze", "recurrent", iters=2, width=4)
    compiled.load_state_dict(eager.state_dict())
    init = [p.detach().clone() for p in eager.parameters()]
    wrapped = compile_for_training(compiled, mode="reduce-overhead", device="cpu",
                                   backend="aot_eager")
    assert isinstance(wrapped, StaticShapeModel) and not wrapped.cudagraphs  # CUDA only
    want = _epoch(eager, eager, batches)
    got = _epoch(compiled, wrapped, batches)
    assert wrapped.calls == {"compiled": 8, "eager": 2}
    assert list(wrapped.parameters()) == list(compiled.parameters())  # one set of weights
    for a, b in zip(want, got):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6)
    assert all(not torch.equal(a, p) for a, p in zip(want, init))  # both trained


def test_cuda_graphs_only_on_cuda_and_never_under_ddp():
    model = build_model("maze", "recurrent", iters=1, width=4)
    # torch.compile is lazy: nothing is compiled (or needs a GPU) until the first call.
    assert compile_for_training(model, mode="reduce-overhead", device="cuda").cudagraphs
    assert compile_for_training(model, mode="max-autotune", device="cuda:1").cudagraphs
    assert not compile_for_training(model, mode="reduce-overhead", device="cuda",
                                    distributed=True).cudagraphs
    assert not compile_for_training(model, mode="reduce-overhead", device="cpu").cudagraphs
    assert not compile_for_training(model, mode="default", device="cuda").cudagraphs


# ---------------------------------------------------------------- the main job on a GPU

def test_reproduce_picks_the_gpu_design_where_cuda_is(monkeypatch):
    from recurdepth.cli.reproduce import DEFAULT_PRESET, GPU_PRESET, default_design

    monkeypatch.setattr("recurdepth.training.launch.visible_gpu_count", lambda: 1)
    assert default_design("auto") == GPU_PRESET and default_design("cpu") == DEFAULT_PRESET
    monkeypatch.setattr("recurdepth.training.launch.visible_gpu_count", lambda: 0)
    assert default_design("auto") == DEFAULT_PRESET
    with pytest.raises(ConfigError, match="--design gpu needs a CUDA GPU"):
        default_design("gpu")
    cpu, gpu = load_experiment(DEFAULT_PRESET), load_experiment(GPU_PRESET)
    cpu_depths = {r.config.model.effective_depth for r in cpu.runs()}
    gpu_depths = {r.config.model.effective_depth for r in gpu.runs()}
    # The design: >= 8 trials, the CPU job's depths plus a deeper one.
    assert gpu.trials >= 8 and cpu_depths < gpu_depths and max(gpu_depths) > max(cpu_depths)
    assert all(r.config.runtime.device == "cuda" for r in gpu.runs())
    assert "ESTIMATE" in gpu.description


# ---------------------------------------------------------------- the device check, smoke mode

def test_gpu_check_smoke_mode_writes_one_summary_table(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    assert gpu_check.main(["--smoke", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    settings = [r["setting"] for r in summary["rows"]]
    assert any("bare step" in s and "TF32 off" in s for s in settings)
    assert any("tf32" in s for s in settings)
    assert any(s.startswith("engine train_run, batch 50, fp32") for s in settings)
    job = summary["main_job"]
    assert job["runs"] == 2 and job["failed"] == 0 and job["full_runs"] == 64
    assert all(r["images_per_s"] > 0 for r in summary["rows"]) and summary["finished"]
    table = (tmp_path / "gpu_check.md").read_text()
    assert "full reproduce_gpu (64 runs), extrapolated" in table
    assert table.strip() in capsys.readouterr().out
