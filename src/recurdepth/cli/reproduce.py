"""``recurdepth reproduce``: the paper's central claim end to end, sized for the machine at hand.

Default: generate small mazes, train recurrent and feed-forward maze solvers at several effective
depths (sized to finish within 30 minutes on a 2-core CPU), and report accuracy vs depth side by
side with the parameter table. ``--quick`` is a few-minute smoke version; ``--preset NAME`` runs any
of the paper's experiments at the authors' scale (a GPU machine or a Ray cluster).

``--seed N`` sets the experiment's base seed: trial t trains with seed N + t, and the mazes are
generated with seed N. Each base seed is its own experiment with its own output folder, so results
of different seeds never mix.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import time
from pathlib import Path

from recurdepth.cli.sweep import add_experiment_options, executor_from_args
from recurdepth.errors import ConfigError, choices_message
from recurdepth.experiments.spec import DEFAULT_PRESET, Experiment, list_presets, load_experiment
from recurdepth.experiments.sweep import run_sweep

QUICK_PRESET = "quick"
FULL_PRESET = "reproduce_full"
GPU_PRESET = "reproduce_gpu"  # the default job on a machine with CUDA
OUT_ROOT = Path("reproduce")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce",
        help="reproduce the paper's central claim end to end (default: ~15 min on a 2-core CPU "
             "with bf16 units)",
        description="Generate small mazes, train recurrent and feed-forward maze solvers at "
        "several effective depths, and write the report: the verdict on the paper's claim "
        "(per depth, recurrent minus feed-forward accuracy with a 95% confidence interval, the "
        "parameter ratio, convergence of every run; also printed here), accuracy vs effective "
        "depth with parameter counts, learning curves, accuracy vs test-time iterations up to "
        "twice the trained count, and the tables. The default took 14.5 minutes on a 2-core CPU "
        "with bf16 instructions (avx512_bf16/amx_bf16; expect roughly twice as long without); "
        "--full trains the deeper solvers twice as long (about an hour); --quick is a smoke "
        "version of under a minute; --preset NAME runs a paper experiment at the authors' scale "
        f"(presets: {', '.join(list_presets())}). Rerunning continues where it stopped.",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--quick", action="store_true",
                       help=f"smoke version (preset {QUICK_PRESET!r}, under a minute; with "
                            "--preset, that analysis preset's smoke form)")
    which.add_argument("--full", action="store_true",
                       help=f"the longer variant (preset {FULL_PRESET!r}: 60 epochs at depths 12 "
                            "and 16, about an hour on a 2-core CPU)")
    p.add_argument("--preset", default=None, metavar="NAME",
                   help="run this experiment preset (or experiment YAML) at the authors' scale, "
                        "or an analysis preset (the paper's Tables 3, 6, 7, Figure 6, CKA values, "
                        f"Figure 8: {', '.join(_analysis_presets())}); with --quick, an analysis "
                        "preset's CPU-sized smoke form")
    p.add_argument("--design", choices=("auto", "cpu", "gpu"), default="auto",
                   help=f"the default job's design: cpu ({DEFAULT_PRESET!r}, sized for a 2-core "
                        f"CPU) or gpu ({GPU_PRESET!r}: 8 trials, depths 8-20, 60 epochs, runs "
                        "packed per GPU, an estimated 6-9 minutes on one H100/H200); auto: gpu "
                        "when CUDA is available (default auto)")
    p.add_argument("--seed", default=None, metavar="N",
                   help="base seed of the experiment: trial t trains with seed N+t and the mazes "
                        "are generated with seed N (default: the preset's, 0); a non-default "
                        "seed writes to its own folder, e.g. reproduce/seed-100")
    add_experiment_options(p, out_default="reproduce/ for the default job, reproduce/<preset> "
                                          "for --quick, --full or --preset (reproduce/<preset>-quick "
                                          "for an analysis preset's smoke form, whose runs train "
                                          "beside it in <out>/../<experiment>), plus /seed-N for "
                                          "--seed N",
                           data_default="<out>/data for the CPU-sized runs, the preset's "
                                        "data.root with --preset")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from recurdepth.report import write_report
    from recurdepth.report.tables import depth_table

    if args.preset is not None and not args.preset.strip():
        raise ConfigError(f"--preset needs a name: an experiment preset "
                          f"({', '.join(list_presets())}), an experiment YAML or an analysis "
                          f"preset ({', '.join(_analysis_presets())}); leave --preset out for "
                          f"the default job")
    if args.preset in _analysis_presets():
        return run_analysis(args)
    if (args.preset is not None and args.preset not in list_presets()
            and not args.preset.endswith((".yaml", ".yml")) and not Path(args.preset).is_file()):
        # One list of both kinds, so a near miss of an analysis preset is suggested too.
        raise ConfigError(choices_message("preset", args.preset,
                                          [*list_presets(), *_analysis_presets()])
                          + "; or give the path of an experiment YAML file")
    if args.preset is not None and (args.quick or args.full):
        raise ConfigError(f"--{'quick' if args.quick else 'full'} goes with the default job or an "
                          f"analysis preset ({', '.join(_analysis_presets())}); experiment preset "
                          f"{args.preset!r} is sized by overrides: `recurdepth sweep "
                          f"{args.preset} train.epochs=1 --trials 1`")
    name = args.preset or (QUICK_PRESET if args.quick else FULL_PRESET if args.full
                           else default_design(args.design))
    seed = parse_seed(args.seed)
    experiment = load_experiment(name)
    own_seed = experiment.base.get("seed", 0)
    if seed is not None and seed != own_seed:
        experiment = with_base_seed(experiment, seed)
    out = args.out if args.out is not None else default_out(experiment, name, seed, own_seed)
    # The CPU-sized presets generate their mazes next to the results; paper presets read the
    # experiment's data root unless told otherwise.
    data_root = args.data_root
    if data_root is None and args.preset is None:
        data_root = out / "data"
    if data_root is not None:
        experiment = experiment.with_data_root(Path(data_root).resolve())
    max_parallel = args.max_parallel
    if (max_parallel is None and args.executor == "local" and args.preset is None
            and name != GPU_PRESET):  # on a GPU the executor packs runs per GPU itself
        # One single-threaded run per core: on a small shared CPU this beats one run on all
        # cores (no thread spin-waiting when another process takes a core).
        max_parallel = max(1, min(2, os.cpu_count() or 1))
    args.max_parallel = max_parallel
    executor = executor_from_args(args)
    if hasattr(executor, "check_submittable"):
        executor.check_submittable()
    runs = experiment.runs()
    print(f"reproduce {experiment.name}: {len(runs)} runs ({experiment.trials} trial(s) per "
          f"configuration) -> {out}")
    if experiment.description:
        print(f"  {experiment.description}")
    if name == GPU_PRESET and args.design == "auto":
        print("  (the GPU design, chosen because CUDA is available; --design cpu runs the CPU job)")
    start = time.perf_counter()
    summary = run_sweep(experiment, out, executor=executor, progress=not args.no_progress)
    files = write_report(summary.db_path)
    minutes = (time.perf_counter() - start) / 60
    print()
    table = depth_table(files.groups)
    print(table.markdown() + (f"{table.note}\n" if table.note else ""))
    print("(mean ± standard error over trials; the verdict below uses 95% confidence intervals)")
    if files.verdicts:
        print(files.verdict_text())
        print()
    print(f"{summary.total} runs ({summary.skipped} finished before, {summary.ran} now, "
          f"{len(summary.failures)} failed) in {minutes:.1f} min")
    for path in files.figures:
        print(f"figure: {path}")
    print(f"report: {files.index} (and {files.index_html.name})")
    for run_name, error in summary.failures:
        print(f"  failed: {run_name}: {error.splitlines()[0]}")
    return 1 if summary.failures else 0


def _analysis_presets() -> list[str]:
    from recurdepth.experiments.analysis_spec import list_analysis_presets

    return list_analysis_presets()


def run_analysis(args: argparse.Namespace) -> int:
    """An analysis preset: train (or reuse) its runs, analyse them, print the paper table."""
    from recurdepth.experiments.analysis_spec import load_analysis_preset
    from recurdepth.report.paper_analyses import run_analysis_preset

    if args.full:
        raise ConfigError(f"--full has no meaning for analysis preset {args.preset!r}: it runs "
                          f"at the paper's scale unless --quick is given")
    if args.seed is not None:
        raise ConfigError(f"analysis preset {args.preset!r} analyses trials with the seeds of "
                          f"the experiment it comes from (trial t: seed base + t); --seed does "
                          f"not apply")
    preset = load_analysis_preset(args.preset)
    out = args.out if args.out is not None else OUT_ROOT / (
        args.preset + ("-quick" if args.quick else ""))
    executor = executor_from_args(args)
    print(f"reproduce {preset.name}{' (quick)' if args.quick else ''}: {preset.analysis} on "
          f"runs of {preset.of} -> {out}")
    print(f"  {preset.description}")
    if preset.of == DEFAULT_PRESET and not args.quick:
        print(f"  Its runs are the main job's, in {out.parent}/: any not trained there yet are "
              f"trained first, at the main job's budget (the whole job: about 15 minutes on 2 "
              f"cores); --quick trains small ones instead.")
    start = time.perf_counter()
    done = run_analysis_preset(preset, out, quick=args.quick, data_root=args.data_root,
                               executor=executor, progress=not args.no_progress)
    if done.sweep.failures:
        for run_name, error in done.sweep.failures:
            print(f"  failed: {run_name}: {error.splitlines()[0]}")
        return 1
    print()
    print(f"{done.table.title}\n{done.table.note}\n")
    print(done.table.markdown())
    print(f"\n{preset.name} in {_duration(time.perf_counter() - start)}")
    for path in done.files:
        print(f"wrote {path}")
    return 0


def default_design(design: str) -> str:
    """The default job's preset: the GPU design where CUDA is (or when asked), else the CPU's."""
    if design == "cpu":
        return DEFAULT_PRESET
    from recurdepth.training.launch import visible_gpu_count

    if visible_gpu_count():
        return GPU_PRESET
    if design == "gpu":
        raise ConfigError("--design gpu needs a CUDA GPU and this machine has none; use "
                          "--design cpu (or auto)")
    return DEFAULT_PRESET


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def parse_seed(text: str | None) -> int | None:
    """The ``--seed`` value as an int >= 0 (None when not given); ConfigError otherwise."""
    if text is None:
        return None
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if seed < 0:
        raise ConfigError(f"--seed must be a whole number >= 0 (e.g. --seed 100), got {text!r}")
    return seed


def with_base_seed(experiment: Experiment, seed: int) -> Experiment:
    """A copy of ``experiment`` whose trial seeds and generated mazes derive from ``seed``."""
    base = copy.deepcopy(experiment.base)
    base["seed"] = seed
    prepare = copy.deepcopy(experiment.prepare)
    if "mazes" in prepare:
        prepare["mazes"]["seed"] = seed
    return dataclasses.replace(experiment, base=base, prepare=prepare)


def default_out(experiment: Experiment, name: str, seed: int | None, own_seed: int) -> Path:
    """``reproduce/`` for the default job, ``reproduce/<preset>`` otherwise, ``/seed-N`` added."""
    out = OUT_ROOT if name == DEFAULT_PRESET else OUT_ROOT / experiment.name
    if seed is not None and seed != own_seed:
        out = out / f"seed-{seed}"
    return out
