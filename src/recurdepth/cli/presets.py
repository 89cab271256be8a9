"""``recurdepth presets``: list the experiment and analysis presets shipped with the package, or
print one."""

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
        help="list the experiment and analysis presets or print one",
        description="The presets shipped with the package: experiments (run them with "
        "`recurdepth sweep NAME` or `recurdepth reproduce --preset NAME`) and the paper's "
        "analyses (`recurdepth reproduce --preset NAME [--quick]`). `show NAME` prints the "
        "preset's YAML: its description (which says where it departs from the paper's protocol "
        "or chooses what the paper leaves open), base config, grid, rules and trials, or the "
        "analysed runs, options and the paper's numbers.",
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
    from recurdepth.experiments.analysis_spec import (analysis_preset_path,
                                                      list_analysis_presets, load_analysis_preset)
    from recurdepth.experiments.spec import list_presets, load_experiment, preset_path

    experiments, analyses = list_presets(), list_analysis_presets()
    if args.action == "list":
        if args.name is not None:
            raise ConfigError(f"`presets list` takes no name; to print one use "
                              f"`recurdepth presets show {args.name}`")
        width = max(map(len, experiments + analyses))
        print("experiments (`recurdepth sweep NAME` or `recurdepth reproduce --preset NAME`):")
        for name in experiments:
            print(f"  {name:<{width}}  {summary(load_experiment(name).description)}")
        print("\nanalyses of the paper (`recurdepth reproduce --preset NAME [--quick]`):")
        for name in analyses:
            print(f"  {name:<{width}}  {summary(load_analysis_preset(name).description)}")
        print(f"\n{len(experiments) + len(analyses)} presets; `recurdepth presets show NAME` "
              f"prints one")
        return 0
    if args.name is None:
        raise ConfigError("`presets show` needs a preset name; valid choices: "
                          + ", ".join(experiments + analyses))
    if args.name in analyses:
        path = analysis_preset_path(args.name)
    elif args.name in experiments:
        path = preset_path(args.name)
    else:
        from recurdepth.errors import choices_message

        raise ConfigError(choices_message("preset", args.name, experiments + analyses))
    print(f"# {path}")
    print(path.read_text(encoding="utf-8"), end="")
    return 0
