"""Looped transformers on addition through the user's path; AdamW + cosine; bad input."""

from __future__ import annotations

import json
import math

import pytest

from recurdepth.cli import main
from recurdepth.errors import ConfigError
from recurdepth.training.config import (RunConfig, apply_overrides, identity_hash, protocol_dict,
                                        resolve_on)
from recurdepth.training.optim import build_optimizer, lr_factor

BASE = ["model.family=transformer", "model.width=16", "data.name=addition", "data.maze_size=3",
        "optim.name=adamw", "optim.lr=0.003", "optim.weight_decay=0.01", "optim.schedule=cosine",
        "optim.warmup_epochs=2", "train.batch_size=64", "runtime.device=cpu",
        "runtime.threads=1", "runtime.amp=off", "seed=1"]


def config(*overrides: str) -> RunConfig:
    return resolve_on(apply_overrides(RunConfig(), [*BASE, "model.iters=2", *overrides]), "cpu")


def test_cosine_schedule_and_adamw():
    cfg = config("train.epochs=8")
    assert cfg.optim.cosine_epochs == 8  # recorded from train.epochs
    # warm-up 1 - exp(-1/2) in epoch 0, then (1 + cos(pi e / 8)) / 2, written out independently.
    expected = [(1 - math.exp(-0.5)) * 1.0] + [(1 + math.cos(math.pi * e / 8)) / 2
                                                for e in range(1, 8)]
    assert [lr_factor(e, cfg.optim) for e in range(8)] == pytest.approx(expected)
    from recurdepth.models import build_model

    opt = build_optimizer(build_model("transformer", "recurrent", iters=1, width=8,
                                      dataset="addition"), cfg.optim, divide_recurrent=False)
    assert type(opt).__name__ == "AdamW" and opt.defaults["weight_decay"] == 0.01
    # The cosine length is part of the identity; the default schedule adds no key.
    assert identity_hash(config("train.epochs=8")) != identity_hash(config("train.epochs=9"))
    step = resolve_on(apply_overrides(RunConfig(), ["model.family=maze", "model.iters=2"]), "cpu")
    assert "optim.schedule" not in protocol_dict(step)


def test_bad_input_is_one_line(tmp_path):
    for bad, pattern in [
        (["data.maze_size=5000"], r"data\.maze_size"),
        (["model.iters=0"], r"iters"),
        (["optim.schedule=linear"], r"optim\.schedule.*step, cosine"),
        (["data.name=prefix_sums", "data.maze_size=8"], r"not defined for data set"),
    ]:
        with pytest.raises(ConfigError, match=pattern) as err:
            config(*bad)
        assert "\n" not in str(err.value)


def test_train_then_eval_longer_sums_and_more_loops(tmp_path, capsys):
    run = tmp_path / "looped"
    assert main(["train", "--run-dir", str(run), *BASE, "model.iters=2", "train.epochs=1",
                 "data.train_limit=256", "data.test_limit=64", "train.eval_iters=4",
                 "train.objective=progressive", "--quiet"]) == 0
    result = json.loads((run / "result.json").read_text())
    assert len(result["test_acc_per_iter"]) == 4  # loops 1..2x trained
    capsys.readouterr()
    assert main(["eval", str(run), "--size", "6", "--iters", "4", "--limit", "32",
                 "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["maze_size"] == 6 and out["samples"] == 32 and len(out["acc_per_iter"]) == 4
