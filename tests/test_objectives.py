"""Training objectives: the paper's final loss and Bansal et al.'s progressive loss."""

from __future__ import annotations

import pytest
import torch

from recurdepth.cli import main
from recurdepth.data.tasks import task_of
from recurdepth.errors import ConfigError
from recurdepth.models import build_model
from recurdepth.training.checkpoint import load_checkpoint
from recurdepth.training.config import RunConfig, apply_overrides, identity_hash, resolve_on
from recurdepth.training.objectives import OBJECTIVES, Progressive, make_objective

MAZE = task_of("mazes")


def maze_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(4, 3, 12, 12, generator=g) > 0.3).float()
    y = torch.randint(0, 2, (4, 12, 12), generator=g)
    return x, y


class Forced(Progressive):
    """The progressive loss with its draw fixed, to test each (n, k) exactly."""

    def __init__(self, n: int, k: int, alpha: float = 1.0) -> None:
        super().__init__(alpha)
        self.forced = (n, k)

    def draw(self, iters: int, recurrent: bool) -> tuple[int, int]:
        n, k = self.forced
        return (n, k) if recurrent else (n, iters - n)


def test_progressive_draws_cover_the_paper_ranges_and_follow_the_seed():
    obj = make_objective("progressive")
    obj.set_epoch(3, 1)
    pairs = [obj.draw(4, recurrent=True) for _ in range(400)]
    assert set(pairs) == {(n, k) for n in range(4) for k in range(1, 5 - n)}
    again = make_objective("progressive")
    again.set_epoch(3, 1)
    assert [again.draw(4, recurrent=True) for _ in range(400)] == pairs
    other = make_objective("progressive")
    other.set_epoch(3, 2)
    assert [other.draw(4, recurrent=True) for _ in range(400)] != pairs
    assert {obj.draw(4, recurrent=False) for _ in range(100)} == {(n, 4 - n) for n in range(4)}


def test_alpha_one_sends_no_gradient_through_the_first_n_iterations():
    torch.manual_seed(0)
    model = build_model("maze", "recurrent", iters=4, width=4)
    x, y = maze_batch()
    loss = Forced(2, 1).loss(model, x, y, MAZE)
    loss.backward()
    assert all(p.grad is None for p in model.stem.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.body.parameters())
    got = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    # The same loss written out: two iterations detached, then one with gradient, then the head.
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        h = model.body[0](model.body[0](model.stem(x), 0), 1)
    ref = MAZE.loss(model.head(model.body[0](h, 2)), y, x)
    ref.backward()
    torch.testing.assert_close(loss, ref)
    for n, g in got.items():
        torch.testing.assert_close(g, dict(model.named_parameters())[n].grad)

    # n = 0 starts from the stem with gradient (as in the authors' code).
    model.zero_grad(set_to_none=True)
    Forced(0, 2).loss(model, x, y, MAZE).backward()
    assert all(p.grad is not None for p in model.stem.parameters())


def test_alpha_mixes_the_final_and_the_progressive_loss():
    torch.manual_seed(1)
    model = build_model("maze", "recurrent", iters=3, width=4)
    x, y = maze_batch(1)
    with torch.no_grad():
        final = MAZE.loss(model(x), y, x)
        prog = MAZE.loss(model(x, 2, start=model.states(x, 1)[0], first=1), y, x)
        for alpha in (0.0, 0.25, 1.0):
            got = Forced(1, 2, alpha).loss(model, x, y, MAZE)
            torch.testing.assert_close(got, (1 - alpha) * final + alpha * prog)
        torch.testing.assert_close(make_objective("final").loss(model, x, y, MAZE), final)


def test_feedforward_twin_trains_with_the_progressive_loss():
    torch.manual_seed(2)
    model = build_model("maze", "recurrent", iters=4, width=4)
    twin = model.feedforward_twin()
    x, y = maze_batch(2)
    # Tied weights: the twin's progressive loss (n blocks detached, the remaining T - n with
    # gradient) equals the recurrent model's with k = T - n.
    rec = Forced(1, 3).loss(model, x, y, MAZE)
    ff = Forced(1, 99).loss(twin, x, y, MAZE)
    torch.testing.assert_close(ff, rec)
    ff.backward()
    assert all(p.grad is None for p in twin.stem.parameters())
    assert all(p.grad is None for p in twin.body[0].parameters())
    assert all(p.grad is not None for unit in twin.body[1:] for p in unit.parameters())
    # And it learns: a few Adam steps with the progressive loss lower it.
    opt = torch.optim.Adam(twin.parameters(), lr=1e-2)
    obj = make_objective("progressive")
    obj.set_epoch(0, 0)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        obj.loss(twin, x, y, MAZE).backward()
        opt.step()
        with torch.no_grad():
            losses.append(float(MAZE.loss(twin(x), y, x)))
    assert losses[-1] < 0.8 * losses[0]


def config(*overrides: str) -> RunConfig:
    base = ["model.family=maze", "model.iters=2", "model.width=4", "runtime.device=cpu"]
    return resolve_on(apply_overrides(RunConfig(), [*base, *overrides]), "cpu")


def test_bad_objective_settings_are_one_line_errors():
    for bad, pattern in [
        (["train.alpha=1.5"], r"^train\.alpha must be >= 0 and <= 1, got 1\.5$"),
        (["train.alpha=-0.1"], r"^train\.alpha must be >= 0 and <= 1"),
        (["train.objective=bogus"], r"train\.objective.*bogus.*final, progressive"),
        (["train.alpha=0.5"], r"^train\.alpha=0\.5 is only used by train\.objective=progressive"),
    ]:
        with pytest.raises(ConfigError, match=pattern) as err:
            config(*bad)
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"^train\.alpha must be in \[0, 1\]"):
        make_objective("progressive", 2.0)
    with pytest.raises(ConfigError, match="fixed depth"):
        resolve_on(apply_overrides(RunConfig(), [
            "model.family=resnet18", "model.mode=feedforward", "data.name=cifar10",
            "train.objective=progressive"]), "cpu")
    assert sorted(OBJECTIVES) == ["final", "progressive"]
    # The default objective leaves the identity as it was; another one is another run.
    assert identity_hash(config()) == identity_hash(config("train.objective=final"))
    assert identity_hash(config()) != identity_hash(config("train.objective=progressive"))


def test_progressive_run_resumes_exactly(tmp_path, capsys):
    from recurdepth.data.mazes import generate_dataset, maze_dir

    root = tmp_path / "data"
    generate_dataset(maze_dir(root, 5), size=5, n_train=20, n_test=4, progress=False)
    args = ["model.family=maze", "model.iters=3", "model.width=4", f"data.root={root}",
            "data.maze_size=5", "train.batch_size=5", "train.objective=progressive",
            "train.alpha=0.5", "optim.name=adam", "optim.lr=0.01", "runtime.device=cpu",
            "runtime.threads=1", "seed=4", "--quiet"]
    assert main(["train", "--run-dir", str(tmp_path / "two"), *args, "train.epochs=2"]) == 0
    assert main(["train", "--run-dir", str(tmp_path / "split"), *args, "train.epochs=1"]) == 0
    assert main(["train", "--run-dir", str(tmp_path / "split"), *args, "train.epochs=2"]) == 0
    a = load_checkpoint(tmp_path / "two" / "checkpoint_last.pt")["model"]
    b = load_checkpoint(tmp_path / "split" / "checkpoint_last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    capsys.readouterr()


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_progressive_in_two_gloo_processes_matches_one_process(tmp_path):
    """DDP with the progressive loss: the stem may get no gradient in a step and alpha < 1 runs
    the model twice; two processes must still end with one process's weights."""
    import os
    import subprocess
    import sys

    from recurdepth.data.mazes import generate_dataset, maze_dir

    root = tmp_path / "data"
    generate_dataset(maze_dir(root, 5), size=5, n_train=40, n_test=4, progress=False)
    args = ["model.family=maze", "model.iters=3", "model.width=4", f"data.root={root}",
            "data.maze_size=5", "train.batch_size=10", "train.epochs=2",
            "train.objective=progressive", "train.alpha=0.5", "optim.name=adam",
            "optim.lr=0.003", "runtime.progress=false", "runtime.device=cpu", "runtime.amp=off",
            "runtime.channels_last=false", "seed=5"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    one = [sys.executable, "-m", "recurdepth", "train", "--run-dir", str(tmp_path / "one")]
    two = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           "-m", "recurdepth", "train", "--run-dir", str(tmp_path / "two")]
    for cmd in (one, two):
        proc = subprocess.run(cmd + args, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-2000:]
    a = load_checkpoint(tmp_path / "one" / "checkpoint_last.pt")["model"]
    b = load_checkpoint(tmp_path / "two" / "checkpoint_last.pt")["model"]
    assert max(float((a[k].double() - b[k].double()).abs().max()) for k in a) <= 1e-5
