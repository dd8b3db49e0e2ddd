"""The `recbench` command. Each subcommand is a thin adapter over a function with keyword arguments.

Exit status: 0 success, 1 a check failed, 2 bad input (one line per problem, naming file and field),
130 interrupted (results already written are kept).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from bench import __version__
from bench.errors import InputError

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def _cmd_run(args: argparse.Namespace) -> int:
    from bench.runner import run_scenarios

    def announce(path: Path) -> None:
        print(f"wrote {path}", flush=True)

    try:
        summary = run_scenarios(
            args.scenarios,
            results_dir=args.results_dir,
            resume=args.resume,
            show_progress=not args.no_progress,
            on_written=announce,
        )
    except KeyboardInterrupt:
        print(
            "interrupted: results written so far are kept; rerun with --resume to skip them",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    for label in summary.skipped:
        print(f"skipped (already measured, --resume): {label}")
    print(f"{len(summary.written)} result(s) written, {len(summary.skipped)} skipped")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from bench.runner import plan_points
    from bench.scenarios.loader import validate_files

    counts = validate_files(args.files)
    if args.here:
        plan_points(args.files)
    for path, points in counts:
        print(f"ok {path} ({points} point{'s' if points != 1 else ''})")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from bench.report.show import show_results

    if show_results(args.results) == 0:
        raise InputError(f"{' '.join(map(str, args.results))}: no result files found")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from bench.scenarios.schema import scenario_json_schema

    text = json.dumps(scenario_json_schema(), indent=2) + "\n"
    if args.output:
        try:
            args.output.write_text(text)
        except OSError as exc:
            raise InputError(f"--output: {args.output}: cannot write ({exc.strerror})") from None
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recbench", description="Hardware-cost benchmarks for LLM-based recommender systems."
    )
    parser.add_argument("--version", action="version", version=f"recbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run scenario files and write one JSON result per point")
    run.add_argument("scenarios", nargs="+", type=Path, metavar="SCENARIO")
    run.add_argument("--results-dir", type=Path, default=Path("results"), help="default: results/")
    run.add_argument("--resume", action="store_true", help="skip points already measured on this machine")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.set_defaults(handler=_cmd_run)

    validate = sub.add_parser("validate", help="check scenario files (every sweep point) without running")
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    validate.add_argument("--here", action="store_true", help="also check this machine can run them")
    validate.set_defaults(handler=_cmd_validate)

    show = sub.add_parser("show", help="print results (files or folders) as tables")
    show.add_argument("results", nargs="+", type=Path, metavar="RESULT")
    show.set_defaults(handler=_cmd_show)

    schema = sub.add_parser("schema", help="print the JSON Schema of scenario files")
    schema.add_argument("-o", "--output", type=Path)
    schema.set_defaults(handler=_cmd_schema)
    return parser


def _one_line_warnings(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.showwarning = _one_line_warnings
    try:
        return args.handler(args)
    except InputError as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
