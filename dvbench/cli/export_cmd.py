"""``dvbench export``: a searched trial's architecture as a config file."""

from __future__ import annotations

import argparse
from pathlib import Path

from dvbench.cli.argtypes import add_study_arguments

EPILOG = """\
examples:
  python cli.py export small --trial 12                  # results/small/trial_12.yaml
  python cli.py export small --trial 12 --out best.json
  python cli.py profile results/small/trial_12.yaml     # then use it anywhere
  python cli.py train results/small/trial_12.yaml --data digits

the file holds DualViTConfig fields (YAML: at the top level under a comment saying where it
came from; JSON: as {"config": ..., "source": ...}); profile, train, compare,
dvbench.models.create_model(FILE) and timm.create_model("dualvit_s", **load_config(FILE)
.to_dict()) all build the same network from it. Only COMPLETE trials can be exported.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write a trial's architecture as a config file",
        description="Write the Dual-ViT config a study's trial recorded as YAML or JSON.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_study_arguments(parser)
    parser.add_argument("--trial", type=int, required=True, metavar="N", help="trial number")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help=".yaml, .yml or .json (default: the study folder's trial_N.yaml)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dvbench.report import export_trial
    from dvbench.search import check_study_name, open_study

    if args.storage and args.out is None:  # the output folder is results-dir/STUDY
        check_study_name(args.study)
    study, folder = open_study(args.study, results_dir=args.results_dir, storage=args.storage)
    if args.out is None:
        folder.mkdir(parents=True, exist_ok=True)
    path = export_trial(study, args.trial, args.out or folder / f"trial_{args.trial}.yaml")
    print(path)
    return 0
