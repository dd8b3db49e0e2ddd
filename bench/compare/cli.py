"""`recbench compare`, `recbench check` and `recbench baseline save|list`: thin adapters over
bench.compare, added to the main parser by `add_compare_commands(sub)`.

Exit status: 0 success (compare always, check when no gate fails), 1 a gate failed, 2 bad input (bench.cli.main).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_CHECK_FAILED = 1


def _console():
    from rich.console import Console

    # Off a terminal (CI logs, pipes) rich assumes 80 columns and truncates the tables.
    return Console(width=None if sys.stdout.isatty() else 160)


def _cmd_compare(args: argparse.Namespace) -> int:
    from bench.compare.baseline import baseline_for
    from bench.compare.comparison import compare_results
    from bench.compare.stats import parse_fraction
    from bench.report.compare import render_comparison

    baseline = baseline_for(args.baseline, args.current, results_dir=args.results_dir)
    comparison = compare_results(
        [baseline], args.current, min_effect=parse_fraction(args.min_effect, what="--min-effect"), alpha=args.alpha
    )
    render_comparison(comparison, _console())
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from bench.compare.baseline import baseline_for
    from bench.compare.gates import check_results, parse_gates

    gates = parse_gates(args.fail_on)  # before loading anything: a typo in a gate is reported first
    baseline = baseline_for(args.baseline, args.results, results_dir=args.results_dir)
    report = check_results([baseline], args.results, fail_on=gates, alpha=args.alpha)
    print(f"baseline {baseline}; {len(gates)} gate(s); significance: Mann-Whitney U two-sided, alpha {args.alpha:g}")
    for line in report.lines():
        print(line)
    return 0 if report.passed else EXIT_CHECK_FAILED


def _cmd_baseline_save(args: argparse.Namespace) -> int:
    from bench.compare.baseline import save_baseline

    folder = save_baseline(args.results, name=args.name, results_dir=args.results_dir, force=args.force)
    stored = sum(1 for p in folder.glob("*.json") if p.name != "manifest.json")
    print(f"saved baseline {args.name!r}: {stored} result(s) in {folder}")
    return 0


def _cmd_baseline_list(args: argparse.Namespace) -> int:
    from bench.compare.baseline import list_baselines

    found = list_baselines(args.results_dir)
    if not found:
        print(f"no baselines under {Path(args.results_dir) / 'baselines'}")
    for machine, name, manifest in found:
        print(
            f"{machine}/{name}: {len(manifest.get('sources', []))} result(s), saved {manifest.get('created_at')}, "
            f"commit {manifest.get('git_commit')}"
        )
    return 0


def add_compare_commands(sub: argparse._SubParsersAction) -> None:
    """Add `compare`, `check` and `baseline save|list` to the recbench subcommands."""
    results_dir_help = "where saved baselines live (RESULTS_DIR/baselines/<machine>/<name>); default: results/"

    compare = sub.add_parser("compare", help="compare results against a baseline: per-metric change and verdict")
    compare.add_argument(
        "baseline", metavar="BASELINE", help="baseline result file or folder, or a saved baseline name"
    )
    compare.add_argument("current", nargs="+", type=Path, metavar="CURRENT", help="result files or folders")
    compare.add_argument(
        "--min-effect", default="5%", metavar="PCT", help="smallest relative change that counts (default 5%%)"
    )
    compare.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    compare.add_argument("--results-dir", type=Path, default=Path("results"), help=results_dir_help)
    compare.set_defaults(handler=_cmd_compare)

    check = sub.add_parser("check", help="fail (exit 1) when results regressed past gates against a baseline")
    check.add_argument("results", nargs="+", type=Path, metavar="RESULTS", help="result files or folders")
    check.add_argument("--baseline", required=True, metavar="NAME|PATH", help="saved baseline name, or a path")
    check.add_argument(
        "--fail-on", required=True, metavar="GATES", help='e.g. "latency.p99:10%%,memory.peak_rss:5%%,cost.per_1m:5%%"'
    )
    check.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    check.add_argument("--results-dir", type=Path, default=Path("results"), help=results_dir_help)
    check.set_defaults(handler=_cmd_check)

    baseline = sub.add_parser("baseline", help="save or list named baselines (one per machine kind)")
    actions = baseline.add_subparsers(dest="baseline_command", required=True)
    save = actions.add_parser("save", help="copy results to RESULTS_DIR/baselines/<machine>/<NAME>/")
    save.add_argument("results", nargs="+", type=Path, metavar="RESULTS", help="result files or folders")
    save.add_argument("--name", required=True, help="baseline name, e.g. main")
    save.add_argument("--results-dir", type=Path, default=Path("results"), help="default: results/")
    save.add_argument("--force", action="store_true", help="replace an existing baseline of that name")
    save.set_defaults(handler=_cmd_baseline_save)
    listing = actions.add_parser("list", help="list saved baselines")
    listing.add_argument("--results-dir", type=Path, default=Path("results"), help="default: results/")
    listing.set_defaults(handler=_cmd_baseline_list)
