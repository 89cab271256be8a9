"""Light commands start without torch; the stored model-zoo table matches the registry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import contextlib, io, sys
from recurdepth.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
heavy = sorted(m for m in ("torch", "torchvision", "matplotlib", "ray", "scipy", "cffi")
               if m in sys.modules)
print(",".join(heavy))
"""


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["mazes", "--help"],
                                  ["mazes", "generate", "--help"], ["models"],
                                  ["models", "--family", "maze", "--format", "json"],
                                  ["presets"], ["presets", "show", "fig6_reuse"], []])
def test_light_commands_never_import_torch(argv: list[str]) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "torch" not in out.stdout.strip().split(","), f"{argv} imported {out.stdout.strip()}"


def test_packages_load_their_public_names_on_first_use() -> None:
    code = ("import sys, recurdepth, recurdepth.analysis, recurdepth.experiments, "
            "recurdepth.training; print('torch' in sys.modules); "
            "from recurdepth.analysis import analyze_cka; from recurdepth.experiments import "
            "run_sweep; print(callable(analyze_cka) and callable(run_sweep))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]


def test_mazes_generate_never_imports_torch(tmp_path: Path) -> None:
    argv = ["mazes", "generate", "--size", "5", "--train", "20", "--test", "5",
            "--out", str(tmp_path / "m"), "--no-progress"]
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "torch" not in out.stdout.strip().split(",")
    assert (tmp_path / "m").is_dir()


def test_mazes_generate_starts_numba_without_scipy_and_cffi(tmp_path: Path) -> None:
    # numba would import both (~0.17 s) though the maze kernels use neither; afterwards both
    # import as usual.
    argv = ["mazes", "generate", "--size", "5", "--train", "20", "--test", "5",
            "--out", str(tmp_path / "m"), "--no-progress"]
    code = PROBE + "import scipy.linalg, cffi\nprint('importable')\n"
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    heavy, after = out.stdout.splitlines()
    assert not {"scipy", "cffi"} & set(heavy.split(",")) and after == "importable"
    assert (tmp_path / "m" / "manifest.json").is_file()


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    from recurdepth.cli import COMMANDS, main

    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for name in COMMANDS:
        assert f"    {name}" in text


def test_stored_zoo_table_equals_the_registry() -> None:
    from recurdepth.models import registry
    from recurdepth.models.registry import zoo_table

    stored = json.loads(Path(registry.__file__).with_name("zoo.json").read_text(encoding="utf-8"))
    assert stored == zoo_table(), ("models/zoo.json is stale: run python -c 'from "
                                   "recurdepth.models.registry import write_zoo_table; "
                                   "write_zoo_table()'")


@pytest.mark.parametrize("argv", [
    ["train", "--help"],
    ["train", "--print-config", "optim.lrr=0.1"],             # unknown key
    ["train", "--print-config", "train.epochs=many"],         # wrong type
    ["train", "--print-config", "seed=0,,2"],                 # malformed multirun
    ["train", "--print-config", "optim.milestones=a,b"],      # list of the wrong items
    ["train", "--print-config", "train.epochs=0"],            # out of range
    ["train", "--print-config", "data.name=cifar"],           # unknown data set
    ["train", "--print-config", "optim.name=adamx"],          # unknown optimizer
])
def test_train_help_and_config_errors_never_import_torch(argv: list[str]) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "torch" not in out.stdout.strip().split(","), f"{argv} imported {out.stdout.strip()}"
    if argv[1] != "--help":
        assert "error:" in out.stderr and "Traceback" not in out.stderr


def test_train_help_lists_every_key_with_type_default_and_meaning(
        capsys: pytest.CaptureFixture[str]) -> None:
    import dataclasses

    from recurdepth.cli import main
    from recurdepth.training.config import RunConfig, config_keys

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # unwrapped
    for key in config_keys():
        assert f" {key} (" in text, key
    # Defaults from the dataclasses themselves; meanings from their field comments.
    assert f"optim.lr (float, default {RunConfig().optim.lr}): peak learning rate" in text
    assert "optim.milestones (list of int, default []): epochs after which lr *= gamma" in text
    assert ("train.eval_iters (int or str or null, default null): Test accuracy at iterations"
            in text)
    assert "seed (int, default 0): seed of every random choice" in text
    # A key added to a section later appears without editing the help.
    fields = {f.name for f in dataclasses.fields(RunConfig().runtime)}
    assert all(f" runtime.{name} (" in text for name in fields)


@pytest.mark.parametrize("argv", [
    ["model.family=maze", "model.effective_depth=12"],
    ["model.family=dt_net_1d", "data.name=prefix_sums", "model.iters=30", "model.mode=feedforward"],
    ["model.family=resnet18", "data.name=cifar10"],
])
def test_train_print_config_of_a_valid_run_never_imports_torch(argv: list[str]) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, "train", "--print-config", *argv],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    heavy = out.stdout.strip()  # PROBE prints only the heavy modules it found
    assert "torch" not in heavy.split(","), f"{argv} imported {heavy}"


def test_stored_family_specs_equal_the_registry_specs() -> None:
    import dataclasses

    from recurdepth.models.registry import get_family, list_models
    from recurdepth.models.spec import _stored_specs

    stored = _stored_specs()
    assert sorted(stored) == list_models()
    for name in list_models():
        assert stored[name] == dataclasses.replace(get_family(name), builder=None), name


def test_resolved_config_is_the_same_with_and_without_torch() -> None:
    code = ("import sys; from recurdepth.training.config import load_config, resolve; "
            "print(resolve(load_config(None, sys.argv[1:])).to_yaml()); "
            "print('torch' in sys.modules)")
    argv = ["model.family=maze_recall", "model.iters=10", "train.objective=progressive"]
    light = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                           timeout=120)
    heavy = subprocess.run([sys.executable, "-c", "import recurdepth.models.registry as r; "
                            "r.get_family('maze'); " + code, *argv], capture_output=True,
                           text=True, timeout=120)
    assert light.returncode == 0 and heavy.returncode == 0, light.stderr + heavy.stderr
    assert light.stdout.splitlines()[-1] == "False" and heavy.stdout.splitlines()[-1] == "True"
    assert light.stdout.splitlines()[:-1] == heavy.stdout.splitlines()[:-1]
