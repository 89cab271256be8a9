"""Training engine pieces without training: configs, optimizers, schedules, checkpoints, metrics."""

from __future__ import annotations

import math
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch

from recurdepth.errors import ConfigError, DataError
from recurdepth.models import build_model
from recurdepth.training.checkpoint import MAGIC, load_checkpoint, save_checkpoint
from recurdepth.data.tasks import get_task
from recurdepth.training import config as config_module
from recurdepth.training.config import (
    RunConfig,
    apply_overrides,
    load_config,
    protocol_dict,
    resolve,
)
from recurdepth.training.evaluate import (
    accuracy,
    accuracy_per_iteration,
    loss_and_correct,
    usable_iters,
)
from recurdepth.training.optim import build_optimizer, lr_factor, param_groups, warmup_factor


# ---------------------------------------------------------------- config

def test_overrides_parse_to_the_field_types():
    cfg = apply_overrides(RunConfig(), ["optim.lr=1e-3", "optim.milestones=[50, 100]",
                                        "data.hflip=false", "model.width=none", "name=123",
                                        "train.eval_iters=30", "runtime.compile=auto"])
    assert cfg.optim.lr == 0.001 and isinstance(cfg.optim.lr, float)
    assert cfg.optim.milestones == [50, 100]
    assert cfg.data.hflip is False and cfg.model.width is None
    assert cfg.name == "123" and cfg.train.eval_iters == 30 and cfg.runtime.compile == "auto"
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


def test_unknown_key_lists_the_valid_keys():
    with pytest.raises(ConfigError, match=r"optim\.lrr.*valid choices:.*optim\.lr,"):
        apply_overrides(RunConfig(), ["optim.lrr=0.1"])
    with pytest.raises(ConfigError, match=r"model\.depth.*model\.effective_depth"):
        RunConfig.from_dict({"model": {"depth": 8}})
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides(RunConfig(), ["optim.lr"])


@pytest.mark.parametrize("override, message", [
    ("train.epochs=ten", r"train\.epochs: expected int"),
    ("train.epochs=2.5", r"train\.epochs: expected int"),
    ("optim.lr=fast", r"optim\.lr: expected float"),
    ("data.download=3", r"data\.download: expected bool"),
    ("optim.milestones=[a]", r"optim\.milestones\[0\]: expected int"),
])
def test_wrong_types_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(RunConfig(), [override])


def test_unknown_model_data_set_optimizer_list_choices():
    base = {"model.effective_depth": 8}
    with pytest.raises(ConfigError, match=r"unknown model family 'nosuchfamily'.*maze.*resnet18"):
        resolve(apply_overrides(RunConfig(), {**base, "model.family": "nosuchfamily"}))
    with pytest.raises(ConfigError, match=r"unknown data set.*'mnist'.*cifar10.*mazes"):
        resolve(apply_overrides(RunConfig(), {**base, "data.name": "mnist"}))
    with pytest.raises(ConfigError, match=r"optimizer.*'rmsprop'.*sgd, adam"):
        resolve(apply_overrides(RunConfig(), {**base, "optim.name": "rmsprop"}))
    with pytest.raises(ConfigError, match=r"impossible.*valid depths: 8, 12"):
        resolve(apply_overrides(RunConfig(), {"model.effective_depth": 10}))
    with pytest.raises(ConfigError, match="not defined for data set 'mazes'"):
        resolve(apply_overrides(RunConfig(), {"model.family": "mlp", "model.iters": 1}))


def test_resolve_fills_the_papers_defaults_and_auto_is_off_on_cpu(monkeypatch):
    monkeypatch.setattr(config_module, "cpu_has_bf16", lambda: False)
    maze = resolve(apply_overrides(RunConfig(), {"model.effective_depth": 16,
                                                 "runtime.device": "cpu"}))
    assert (maze.model.iters, maze.model.width, maze.train.batch_size) == (3, 128, 50)
    assert maze.optim.recur_lr_divide is True and maze.data.crop_padding == 0
    assert maze.runtime.amp == "off"
    assert maze.runtime.channels_last is False and maze.runtime.compile is False
    assert maze.runtime.cudnn_benchmark is False
    cifar = resolve(apply_overrides(RunConfig(), {"model.family": "residual_bn",
                                                  "data.name": "cifar10", "model.iters": 2,
                                                  "runtime.device": "cpu"}))
    assert (cifar.model.effective_depth, cifar.model.width, cifar.train.batch_size) == (11, 256, 128)
    assert (cifar.data.crop_padding, cifar.data.hflip) == (4, True)
    assert cifar.optim.recur_lr_divide is False
    assert cifar.name.startswith("residual_bn-recurrent-i2-cifar10-s0-")
    assert resolve(cifar) == cifar  # resolving is idempotent


def test_load_config_reads_yaml_then_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  family: convnet\n  iters: 3\ndata:\n  name: svhn\n"
                    "optim:\n  lr: 1e-2\nseed: 4\n")
    cfg = load_config(path, ["seed=5"])
    assert (cfg.model.family, cfg.model.iters, cfg.data.name, cfg.optim.lr, cfg.seed) == \
        ("convnet", 3, "svhn", 0.01, 5)
    (tmp_path / "bad.yaml").write_text("model: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_default_names_are_unique_per_identity_and_saved_configs_are_portable(tmp_path):
    from recurdepth.training.config import identity_hash, run_config_yaml

    base = {"model.iters": 1, "runtime.device": "cpu", "data.maze_size": 5}
    a = resolve(apply_overrides(RunConfig(), base))
    wider = resolve(apply_overrides(RunConfig(), {**base, "model.width": 16}))
    faster = resolve(apply_overrides(RunConfig(), {**base, "optim.lr": 0.05}))
    longer = resolve(apply_overrides(RunConfig(), {**base, "train.epochs": 50}))
    assert len({a.name, wider.name, faster.name}) == 3
    assert longer.name == a.name and a.name.endswith(identity_hash(a)[:8])
    # A run folder's config.yaml keeps the request apart from what this device resolved.
    requested = apply_overrides(RunConfig(), base | {"runtime.device": "auto"})
    ran = resolve(requested)
    path = tmp_path / "config.yaml"
    path.write_text(run_config_yaml(requested, ran))
    again = load_config(path, ["seed=1"])
    assert again.name is None and again.runtime.device == "auto" and again.runtime.amp == "auto"
    assert again.runtime.compile == "auto" and again.seed == 1
    assert resolve(again).name != ran.name
    assert resolve(load_config(path)).name == ran.name


def test_protocol_ignores_runtime_and_epochs_but_not_lr():
    a = resolve(apply_overrides(RunConfig(), {"model.iters": 1, "runtime.device": "cpu"}))
    b = apply_overrides(a, {"train.epochs": 99, "runtime.progress": False, "data.root": "/x"})
    c = apply_overrides(a, {"optim.lr": 0.5})
    assert protocol_dict(a) == protocol_dict(b)
    assert protocol_dict(a) != protocol_dict(c)


# ---------------------------------------------------------------- optim

def test_warmup_multipliers_are_the_spec_values():
    got = [round(warmup_factor(e, 5), 2) for e in range(7)]
    assert got == [0.18, 0.33, 0.45, 0.55, 1.0, 1.0, 1.0]
    assert warmup_factor(0, 5) == pytest.approx(1 - math.exp(-1 / 5))
    cfg = apply_overrides(RunConfig(), {"optim.milestones": [10, 20], "optim.gamma": 0.5}).optim
    assert [lr_factor(e, cfg) for e in (5, 9, 10, 19, 20, 30)] == [1, 1, 0.5, 0.5, 0.25, 0.25]
    assert warmup_factor(0, 0) == 1.0


def test_recurrent_module_lr_is_divided_by_iters_on_mazes():
    model = build_model("maze", "recurrent", iters=4, width=4)
    cfg = apply_overrides(RunConfig(), {"optim.lr": 0.2, "optim.warmup_epochs": 0}).optim
    groups = param_groups(model, cfg, divide_recurrent=True)
    by_name = {g["name"]: g for g in groups}
    assert by_name["recurrent"]["base_lr"] == pytest.approx(0.05)
    assert by_name["stem_head"]["base_lr"] == 0.2
    assert {id(p) for p in by_name["recurrent"]["params"]} == {id(p) for p in model.body.parameters()}
    n_params = sum(p.numel() for g in groups for p in g["params"])
    assert n_params == model.num_parameters
    opt = build_optimizer(model, cfg, divide_recurrent=True)
    assert isinstance(opt, torch.optim.SGD)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.2, 0.05])
    assert opt.param_groups[0]["momentum"] == 0.9 and opt.param_groups[0]["weight_decay"] == 2e-4
    ff = build_model("maze", "feedforward", iters=4, width=4)
    assert len(param_groups(ff, cfg, divide_recurrent=True)) == 1
    adam = build_optimizer(model, apply_overrides(RunConfig(), {"optim.name": "adam"}).optim,
                           divide_recurrent=False)
    assert isinstance(adam, torch.optim.Adam) and len(adam.param_groups) == 1


# ---------------------------------------------------------------- checkpoints

def test_checkpoint_roundtrip_and_corruption(tmp_path):
    state = {"model": {"w": torch.arange(6.0)}, "epoch": 3, "rng": random_state()}
    path = save_checkpoint(tmp_path / "c.pt", state)
    back = load_checkpoint(path)
    assert torch.equal(back["model"]["w"], state["model"]["w"]) and back["epoch"] == 3
    assert back["rng"]["python"] == state["rng"]["python"]
    data = bytearray(path.read_bytes())
    data[-200] ^= 0xFF  # one flipped bit inside the tensor data
    (tmp_path / "flipped.pt").write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupt"):
        load_checkpoint(tmp_path / "flipped.pt")
    (tmp_path / "short.pt").write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="corrupt"):
        load_checkpoint(tmp_path / "short.pt")
    (tmp_path / "junk.pt").write_bytes(b"hello")
    with pytest.raises(DataError, match="not a recurdepth checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files


def random_state():
    import random
    return {"python": random.getstate()}


class _Exploit:
    """Unpickling this would create a file: what a malicious checkpoint would do."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_checkpoint_is_refused_without_running_code(tmp_path):
    import hashlib
    import io

    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    torch.save({"model": _Exploit(str(marker))}, buf)
    payload = buf.getvalue()
    assert zipfile.is_zipfile(io.BytesIO(payload))
    # With a valid header and checksum only weights_only loading stands in the way.
    crafted = tmp_path / "evil.pt"
    crafted.write_bytes(MAGIC + hashlib.sha256(payload).digest() + payload)
    with pytest.raises(DataError, match="refused"):
        load_checkpoint(crafted)
    assert not marker.exists()
    # A plain pickle (no torch zip) is refused too.
    plain = tmp_path / "plain.pt"
    plain_payload = pickle.dumps({"model": _Exploit(str(marker))})
    plain.write_bytes(MAGIC + hashlib.sha256(plain_payload).digest() + plain_payload)
    with pytest.raises(DataError):
        load_checkpoint(plain)
    assert not marker.exists()
    # Sanity: the payload really is an exploit when loaded unsafely.
    torch.load(io.BytesIO(payload), weights_only=False)
    assert marker.exists()


# ---------------------------------------------------------------- metrics

def test_maze_loss_is_averaged_over_non_wall_pixels_only():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(2, 3, 4, 4)
    x[0, :, 1:3, 1:3] = 1.0  # 4 open pixels
    x[1, 1, 0, :] = 1.0  # 4 open pixels (green channel only)
    y = torch.randint(0, 2, (2, 4, 4), generator=g)
    logits = torch.randn(2, 2, 4, 4, generator=g)
    loss, _ = loss_and_correct(logits, y, x, task=get_task("maze"))
    logp = torch.log_softmax(logits.double(), 1).numpy()
    expected = []
    for n in range(2):
        for i in range(4):
            for j in range(4):
                if x[n, :, i, j].max() > 0:
                    expected.append(-logp[n, y[n, i, j], i, j])
    assert len(expected) == 8
    assert float(loss) == pytest.approx(float(np.mean(expected)), rel=1e-5)


def test_maze_exact_match_ignores_walls_only():
    x = torch.zeros(3, 3, 2, 2)
    x[:, 0, 0, :] = 1.0  # top row open, bottom row walls
    y = torch.tensor([[[1, 0], [0, 0]]] * 3)
    pred = y.clone()
    pred[1, 1, 1] = 1  # wrong on a wall pixel: still solved
    pred[2, 0, 1] = 1  # wrong on an open pixel: not solved
    logits = torch.stack([1 - pred, pred], 1).float()
    _, correct = loss_and_correct(logits, y, x, task=get_task("maze"))
    assert int(correct) == 2


def test_accuracy_per_iteration_matches_running_each_count_beyond_training():
    torch.manual_seed(0)
    model = build_model("maze", "recurrent", iters=2, width=4)
    x = (torch.rand(6, 3, 8, 8) > 0.3).float()
    y = torch.randint(0, 2, (6, 8, 8))
    # Targets equal to the model's own prediction at 3 iterations: 100% there.
    with torch.no_grad():
        y = model(x, 3).argmax(1)
    batches = [(x[:4], y[:4]), (x[4:], y[4:])]
    per_iter = accuracy_per_iteration(model, batches, task=get_task("maze"), max_iters=5)
    single = [accuracy(model, batches, task=get_task("maze"), iters=i) for i in range(1, 6)]
    assert per_iter == single and per_iter[2] == 100.0


def test_bn_recurrent_iterations_are_capped_at_their_batchnorm_count():
    model = build_model("residual_bn", "recurrent", iters=2, width=4, dataset="cifar10")
    n, note = usable_iters(model, 6)
    assert n == 2 and "BatchNorm for 2 iterations" in note
    assert usable_iters(build_model("maze", "recurrent", iters=2, width=4), 6) == (6, None)


def test_auto_uses_bf16_and_channels_last_on_a_cpu_with_bf16_units(monkeypatch):
    monkeypatch.setattr(config_module, "cpu_has_bf16", lambda: True)
    cfg = resolve(apply_overrides(RunConfig(), {"model.effective_depth": 8,
                                                "runtime.device": "cpu"}))
    assert cfg.runtime.amp == "bf16" and cfg.runtime.channels_last is True
    assert cfg.runtime.compile is False and cfg.runtime.cudnn_benchmark is False
    # An explicit choice wins over the detection, and the resolved config records it.
    off = resolve(apply_overrides(RunConfig(), {"model.effective_depth": 8, "runtime.device": "cpu",
                                                "runtime.amp": "off",
                                                "runtime.channels_last": False}))
    assert off.runtime.amp == "off" and off.runtime.channels_last is False
    assert "amp: bf16" in cfg.to_yaml() and "amp: 'off'" in off.to_yaml()


def test_cpu_has_bf16_reads_the_cpu_flags(tmp_path):
    def cpuinfo(flags: str) -> str:
        path = tmp_path / f"cpuinfo_{len(list(tmp_path.iterdir()))}"
        path.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n\n")
        return str(path)

    assert config_module.cpu_has_bf16(cpuinfo("fpu sse2 avx2 avx512f avx512_bf16")) is True
    assert config_module.cpu_has_bf16(cpuinfo("fpu sse2 amx_tile amx_bf16 amx_int8")) is True
    # AVX-512 without its BF16 extension only emulates bf16: stay in fp32.
    assert config_module.cpu_has_bf16(cpuinfo("fpu sse2 avx2 avx512f avx512bw avx512vl")) is False
    assert config_module.cpu_has_bf16(str(tmp_path / "missing")) is False
