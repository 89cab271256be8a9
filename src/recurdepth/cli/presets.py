"""``recurdepth presets``: list the experiment presets shipped with the package, or print one."""

from __future__ import annotations

import argparse
import textwrap

EXAMPLES = """examples:
  recurdepth presets                      # every preset with the first line of its description
  recurdepth presets show fig5_mazes_small
  recurdepth sweep fig5_mazes_small train.epochs=5 --trials 1   # a preset with overrides"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "presets",
        help="list the experiment presets or print one",
        description="The experiment presets shipped with the package (run them with "
        "`recurdepth sweep NAME`). `show NAME` prints the preset's YAML: its description (which "
        "says where it departs from the paper's protocol), base config, grid, rules and trials.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("action", nargs="?", choices=("list", "show"), default="list",
                   help="list (default) or show one preset")
    p.add_argument("name", nargs="?", metavar="NAME", help="the preset to show")
    p.set_defaults(func=run)


def summary(description: str, width: int = 90) -> str:
    """The first sentence of a description, shortened to ``width`` characters."""
    first = " ".join(description.split()).split(". ")[0].rstrip(".")
    return textwrap.shorten(first, width=width, placeholder=" ...")


def run(args: argparse.Namespace) -> int:
    from recurdepth.errors import ConfigError
    from recurdepth.experiments.spec import list_presets, load_experiment, preset_path

    if args.action == "list":
        if args.name is not None:
            raise ConfigError(f"`presets list` takes no name; to print one use "
                              f"`recurdepth presets show {args.name}`")
        names = list_presets()
        width = max(map(len, names))
        for name in names:
            experiment = load_experiment(name)
            print(f"{name:<{width}}  {summary(experiment.description)}")
        print(f"\n{len(names)} presets; `recurdepth presets show NAME` prints one")
        return 0
    if args.name is None:
        raise ConfigError("`presets show` needs a preset name; valid choices: "
                          + ", ".join(list_presets()))
    path = preset_path(args.name)  # ConfigError with the valid choices
    print(f"# {path}")
    print(path.read_text(encoding="utf-8"), end="")
    return 0
