"""The `recbench` command. Each subcommand is a thin adapter over a function with keyword arguments; modules
are imported by the subcommand that needs them, so `validate` or `tiers` never load torch.

Exit status: 0 success, 1 a check failed, 2 bad input (one line per problem, naming file and field),
120 output could not be written (a full disk; a reader that went away), 130 interrupted (results already
written are kept).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from bench import __version__
from bench.core.collector import collector_paused
from bench.core.errors import InputError
from bench.core.interrupts import EXIT_INTERRUPTED, stop_on_signals

if TYPE_CHECKING:
    from bench.cost.capacity import PlanSettings
    from bench.execution.executor import Executor
    from bench.scenarios.loader import ReadOptions

EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2


# ---------------------------------------------------------------------------------------- run, validate


def _read_options(args: argparse.Namespace) -> ReadOptions:
    from bench.scenarios.loader import ReadOptions

    if args.max_points < 1:
        raise InputError(f"--max-points: must be at least 1, got {args.max_points}")
    return ReadOptions(allow_extends_outside=args.allow_extends_outside, max_points=args.max_points)


def _cmd_run(args: argparse.Namespace) -> int:
    with collector_paused():  # torch and transformers: bench.core.collector
        from bench.runner import run_scenarios

    def announce(path: Path) -> None:
        print(f"wrote {path}", flush=True)

    summary = run_scenarios(
        args.scenarios,
        results_dir=args.results_dir,
        resume=args.resume,
        tier=args.tier,
        tiers_files=args.tiers,
        show_progress=not args.no_progress,
        on_written=announce,
        options=_read_options(args),
        executor=_executor(args),
    )
    for label in summary.skipped:
        print(f"skipped (already measured, --resume): {label}")
    print(f"{len(summary.written)} result(s) written, {len(summary.skipped)} skipped")
    return 0


def _executor(args: argparse.Namespace) -> Executor | None:
    """None: the local executor, which the runner makes for this machine's results folder."""
    ray_only = {"--address": args.address, "--max-parallel": args.max_parallel}
    if args.executor == "local":
        given = [flag for flag, value in ray_only.items() if value is not None]
        if given:
            raise InputError(f"{given[0]}: only with --executor ray")
        return None
    from bench.execution.ray_executor import RayExecutor

    return RayExecutor(address=args.address, max_parallel=args.max_parallel, max_attempts=args.max_attempts,
                       slot_resource=args.slot_resource)  # fmt: skip


def _cmd_validate(args: argparse.Namespace) -> int:
    from bench.scenarios.loader import validate_files

    options = _read_options(args)
    files = validate_files(args.files, options)
    if args.here:
        from bench.runner import plan_points

        plan_points(args.files, options)
    for path, points in files:
        print(f"ok {path} ({len(points)} point{'s' if len(points) != 1 else ''})")
    from bench.measurement.preflight import machine_advice

    for line in machine_advice(files):
        print(f"warning: {line}", file=sys.stderr)
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from bench.results.schema import result_json_schema
    from bench.scenarios.schema import scenario_json_schema

    schema = result_json_schema() if args.kind == "result" else scenario_json_schema()
    text = json.dumps(schema, indent=2) + "\n"
    if args.output:
        try:
            args.output.write_text(text)
        except OSError as exc:
            raise InputError(f"--output: {args.output}: cannot write ({exc.strerror})") from None
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


# ------------------------------------------------------------------------------- show, tiers, report, plan


def _cmd_show(args: argparse.Namespace) -> int:
    from bench.console.show import show_results

    if show_results(args.results, detail=args.detail, strict=args.strict) == 0:
        raise InputError(f"{' '.join(map(str, args.results))}: no result files found")
    return 0


def _cmd_tiers(args: argparse.Namespace) -> int:
    from bench.console.terminal import console_for_stdout
    from bench.console.tiers import tiers_table
    from bench.hardware.tiers import load_tiers

    console_for_stdout().print(tiers_table(load_tiers(args.tiers)))
    return 0


def _cmd_machine(args: argparse.Namespace) -> int:
    from bench.hardware.identify import identify_machine
    from bench.hardware.tiers import load_tiers

    machine = identify_machine(load_tiers(args.tiers))
    if args.key:
        print(machine.key)
        return 0
    print(f"machine key:  {machine.key}")
    print(f"fingerprint:  {machine.fingerprint.describe()} (digest {machine.fingerprint.digest})")
    if machine.host_cores != machine.fingerprint.logical_cores:
        usable = machine.fingerprint.logical_cores
        print(f"cores:        {usable} of the host's {machine.host_cores}: this process's affinity mask or CPU quota")
    cpu = machine.cpu_tier
    print(f"CPU tier:     {cpu.name if cpu else 'none: measured-only (cost it with --price-per-hour or --tiers)'}")
    for name, tier in machine.gpu_tiers:
        print(f"GPU tier:     {name}: {tier.name if tier else 'none in the catalogue'}")
    return 0


def _cmd_validate_projections(args: argparse.Namespace) -> int:
    from bench.console.terminal import console_for_stdout
    from bench.console.validation import validation_markdown, validation_table
    from bench.cost.validation import validate_projections
    from bench.hardware.tiers import load_tiers

    summary = validate_projections(load_tiers(args.tiers))
    if args.markdown:
        print(validation_markdown(summary), end="")
    else:
        console_for_stdout().print(validation_table(summary))
    return 0


def _cmd_projection_check(args: argparse.Namespace) -> int:
    from bench.console.crosscheck import check_table
    from bench.console.terminal import console_for_stdout
    from bench.cost.api import load_points
    from bench.cost.crosscheck import projection_checks
    from bench.hardware.tiers import load_tiers

    checks = projection_checks(load_points(args.results, strict=args.strict), load_tiers(args.tiers))
    if not checks:
        raise InputError(
            f"{' '.join(map(str, args.results))}: no result measured on a catalogue GPU: projection-check sets GPU "
            "measurements beside projections (make gpu-check runs them on a CUDA machine)"
        )
    console = console_for_stdout()
    for check in checks:
        console.print(check_table(check))
    return 0


def _plan_settings(args: argparse.Namespace) -> PlanSettings | None:
    from bench.cost.capacity import PlanSettings

    if args.qps is None and args.slo_p99_ms is None:
        if args.min_ndcg is not None:
            raise InputError("--min-ndcg: a quality bar for the capacity plan: give --qps and --slo-p99-ms with it")
        return None
    if args.qps is None or args.slo_p99_ms is None:
        raise InputError("--qps and --slo-p99-ms go together")
    return PlanSettings(qps=args.qps, slo_p99_ms=args.slo_p99_ms, hours_per_day=args.hours_per_day,
                        headroom=args.headroom, include_owned=args.include_owned,
                        min_ndcg=args.min_ndcg)  # fmt: skip


def _cmd_plan(args: argparse.Namespace) -> int:
    from bench.console.plan import plan_output
    from bench.console.terminal import console_for_stdout
    from bench.cost.api import capacity_plans
    from bench.hardware.tiers import load_tiers

    settings = _plan_settings(args)
    plans = capacity_plans(
        args.results,
        tiers=load_tiers(args.tiers),
        settings=settings,
        measured_on=args.measured_on,
        price_per_hour=args.price_per_hour,
        strict=args.strict,
    )
    console = console_for_stdout()
    for plan in plans:
        output = plan_output(plan)
        if isinstance(output, str):
            print(output)  # one line, never wrapped
        else:
            console.print(output)
    if args.output:
        return _write_report(args, settings)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    return _write_report(args, _plan_settings(args))


def _write_report(args: argparse.Namespace, plan: PlanSettings | None) -> int:
    from bench.hardware.tiers import load_tiers
    from bench.report.build import write_report

    written = write_report(
        args.results,
        args.output,
        tiers=load_tiers(args.tiers),
        measured_on=args.measured_on,
        price_per_hour=args.price_per_hour,
        plan=plan,
        strict=args.strict,
        figures=not args.no_figures,
    )
    html = next((p for p in written if p.suffix == ".html"), None)
    print(f"wrote {len(written)} files to {args.output}" + (f" (open {html})" if html else ""))
    return 0


# ------------------------------------------------------------------------------ compare, check, baseline


def _cmd_compare(args: argparse.Namespace) -> int:
    from bench.compare.baseline import baseline_for
    from bench.compare.comparison import compare_results
    from bench.compare.stats import parse_fraction
    from bench.console.compare import render_comparison

    baseline = baseline_for(
        args.baseline, args.current, results_dir=args.results_dir, strict=args.strict, argument="BASELINE"
    )
    comparison = compare_results(
        [baseline],
        args.current,
        min_effect=parse_fraction(args.min_effect, what="--min-effect"),
        alpha=args.alpha,
        strict=args.strict,
    )
    render_comparison(comparison)
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from bench.compare.baseline import baseline_for
    from bench.compare.gates import check_results, parse_gates
    from bench.compare.stats import TEST_NAME

    gates = parse_gates(args.fail_on)  # before loading anything: a typo in a gate is reported first
    baseline = baseline_for(args.baseline, args.results, results_dir=args.results_dir, strict=args.strict)
    report = check_results(
        [baseline],
        args.results,
        fail_on=gates,
        alpha=args.alpha,
        strict=args.strict,
        allow_different_hardware=args.allow_different_hardware,
    )
    print(f"baseline {baseline}; {len(gates)} gate(s); significance: {TEST_NAME}, {1 - args.alpha:.0%} interval")
    for line in report.lines():
        print(line)
    if not report.failures and not report.checked:  # a gate list that fits none of the results: misconfigured
        raise InputError(f"--fail-on: {args.fail_on}: no gate measured anything in these results; nothing was checked")
    return 0 if report.passed else EXIT_CHECK_FAILED


def _cmd_baseline_save(args: argparse.Namespace) -> int:
    from bench.compare.baseline import save_baseline
    from bench.results.reader import MANIFEST

    folder = save_baseline(
        args.results,
        name=args.name,
        results_dir=args.results_dir,
        force=args.force,
        allow_busy=args.allow_busy,
        strict=args.strict,
    )
    stored = sum(1 for p in folder.glob("*.json") if p.name != MANIFEST)
    print(f"saved baseline {args.name!r}: {stored} result(s) in {folder}")
    return 0


def _cmd_baseline_list(args: argparse.Namespace) -> int:
    from bench.compare.baseline import baselines_root, list_baselines

    if Path(args.results_dir).exists() and not Path(args.results_dir).is_dir():
        raise InputError(f"--results-dir: {args.results_dir}: a file, not a results folder")
    found = list_baselines(args.results_dir)
    if not found:
        print(f"no baselines under {baselines_root(args.results_dir)}")
    for machine, name, manifest in found:
        print(
            f"{machine}/{name}: {len(manifest.get('sources', []))} result(s), saved {manifest.get('created_at')}, "
            f"commit {manifest.get('git_commit')}"
        )
    return 0


# ------------------------------------------------------------------------------------------------ parser


def _add_tiers_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tiers", type=Path, action="append", default=[], metavar="FILE",
                        help="extra tier catalogue YAML overriding or adding tiers (repeatable)")  # fmt: skip


def _add_cost_options(parser: argparse.ArgumentParser) -> None:
    _add_tiers_option(parser)
    parser.add_argument("--measured-on", metavar="TIER", help="catalogue tier the results were measured on")
    parser.add_argument(
        "--price-per-hour", type=_price, metavar="USD",
        help="price a machine the catalogue does not know (its measured-only tier), USD/hour",
    )  # fmt: skip


# A price above this is a typo (the costliest 8-GPU instance in the catalogue is well under it).
MAX_PRICE_PER_HOUR = 10_000.0


def _price(text: str) -> float:
    # InputError rather than argparse's own error, so the message reads like every other flag's.
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"--price-per-hour: must be a number of USD per hour, got {text!r}") from None
    if not (0 < value <= MAX_PRICE_PER_HOUR):  # also rejects nan and inf
        raise InputError(f"--price-per-hour: must be in (0, {MAX_PRICE_PER_HOUR:g}] USD per hour, got {text!r}")
    return value


def _add_plan_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--qps", type=float, required=required, help="target requests per second")
    parser.add_argument("--slo-p99-ms", type=float, required=required, help="p99 latency bound in ms")
    parser.add_argument("--hours-per-day", type=float, default=24.0, help="hours a day at that load (24)")
    parser.add_argument("--headroom", type=float, default=0.2, help="spare capacity fraction (0.2)")
    parser.add_argument(
        "--include-owned", action="store_true",
        help="let the cheapest tier be owned hardware (amortised purchase); default: rented only",
    )  # fmt: skip
    parser.add_argument(
        "--min-ndcg", type=float, metavar="X",
        help="quality bar in [0, 1]: only operating points whose evaluation's mean NDCG@k is at least X qualify, "
        "and the plan picks the cheapest tier and lever among them (results without an evaluation are excluded)",
    )  # fmt: skip


def _add_read_options(parser: argparse.ArgumentParser) -> None:
    from bench.scenarios.loader import DEFAULT_MAX_POINTS

    parser.add_argument("--allow-extends-outside", action="store_true",
                        help="let `extends` name files outside the scenario's own folder tree")  # fmt: skip
    parser.add_argument("--max-points", type=int, default=DEFAULT_MAX_POINTS, metavar="N",
                        help=f"refuse a sweep of more points than this (default {DEFAULT_MAX_POINTS:,})")  # fmt: skip


def _add_strict(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strict", action="store_true", help="a damaged result file is an error (default: warn, skip it)"
    )


def _add_results_dir(parser: argparse.ArgumentParser, help_text: str = "default: results/") -> None:
    parser.add_argument("--results-dir", type=Path, default=Path("results"), help=help_text)


class OneLineErrorParser(argparse.ArgumentParser):
    """A command-line mistake is one line naming the flag (and `--help` for the rest), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="recbench", description="Hardware-cost benchmarks for LLM-based recommender systems."
    )
    parser.add_argument("--version", action="version", version=f"recbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run scenario files and write one JSON result per point")
    run.add_argument("scenarios", nargs="+", type=Path, metavar="SCENARIO")
    _add_results_dir(run)
    run.add_argument("--resume", action="store_true", help="skip points already measured on this machine")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--tier", metavar="TIER", help="catalogue tier this machine is (default: detected)")
    run.add_argument("--executor", choices=("local", "ray"), default="local",
                     help="where points run: this process (default) or a Ray cluster (the ray extra)")  # fmt: skip
    run.add_argument("--address", metavar="ADDR",
                     help="ray: the cluster (auto, ray://HOST:PORT); default: start a Ray here")  # fmt: skip
    run.add_argument("--max-parallel", type=int, metavar="N", help="ray: points running at once (default: as "
                     "many as the cluster's resources allow)")  # fmt: skip
    run.add_argument("--max-attempts", type=int, default=3, metavar="N",
                     help="ray: runs of a point whose worker or node died, in all (default 3)")  # fmt: skip
    run.add_argument("--slot-resource", default="bench_slot", metavar="NAME",
                     help="ray: custom resource a CPU point takes (bench_slot; without it, a whole node)")  # fmt: skip
    _add_tiers_option(run)
    _add_read_options(run)
    run.set_defaults(handler=_cmd_run)

    validate = sub.add_parser("validate", help="check scenario files (every sweep point) without running")
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    validate.add_argument("--here", action="store_true", help="also check this machine can run them")
    _add_read_options(validate)
    validate.set_defaults(handler=_cmd_validate)

    show = sub.add_parser("show", help="print results (files or folders) as tables")
    show.add_argument("results", nargs="+", type=Path, metavar="RESULT")
    show.add_argument("--detail", action="store_true", help="the tables per stage for every result, not a line each")
    _add_strict(show)
    show.set_defaults(handler=_cmd_show)

    tiers = sub.add_parser("tiers", help="list the hardware tier catalogue")
    _add_tiers_option(tiers)
    tiers.set_defaults(handler=_cmd_tiers)

    validation = sub.add_parser(
        "validate-projections", help="project published GPU measurements and print each row's error"
    )
    validation.add_argument("--markdown", action="store_true", help="print a Markdown table (as in the README)")
    _add_tiers_option(validation)
    validation.set_defaults(handler=_cmd_validate_projections)

    crosscheck = sub.add_parser(
        "projection-check", help="GPU results beside their projections (from a CPU result, and from themselves)"
    )
    crosscheck.add_argument("results", nargs="+", type=Path, metavar="RESULT")
    _add_tiers_option(crosscheck)
    _add_strict(crosscheck)
    crosscheck.set_defaults(handler=_cmd_projection_check)

    machine = sub.add_parser("machine", help="this machine's key, fingerprint and catalogue tier")
    machine.add_argument("--key", action="store_true", help="print the key alone (results and baselines folder)")
    _add_tiers_option(machine)
    machine.set_defaults(handler=_cmd_machine)

    report = sub.add_parser("report", help="cost curves, tables and plots (HTML, Markdown, CSV, PNG)")
    report.add_argument("results", nargs="+", type=Path, metavar="RESULT")
    report.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="e.g. reports/NAME")
    report.add_argument("--no-figures", action="store_true", help="skip drawing the PNG figures (faster)")
    _add_cost_options(report)
    _add_strict(report)
    _add_plan_options(report, required=False)
    report.set_defaults(handler=_cmd_report)

    plan = sub.add_parser("plan", help="machines and monthly cost per tier for a QPS under a p99 SLO")
    plan.add_argument("results", nargs="+", type=Path, metavar="RESULT")
    plan.add_argument("-o", "--output", type=Path, metavar="DIR", help="also write the report there")
    plan.add_argument("--no-figures", action="store_true", help="skip drawing the PNG figures (faster)")
    _add_cost_options(plan)
    _add_strict(plan)
    _add_plan_options(plan, required=True)
    plan.set_defaults(handler=_cmd_plan)

    schema = sub.add_parser("schema", help="print the JSON Schema of scenario files (or of result files)")
    schema.add_argument("kind", nargs="?", choices=("scenario", "result"), default="scenario")
    schema.add_argument("-o", "--output", type=Path)
    schema.set_defaults(handler=_cmd_schema)

    _add_compare_commands(sub)
    return parser


def _add_compare_commands(sub: argparse._SubParsersAction) -> None:
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
    _add_results_dir(compare, results_dir_help)
    _add_strict(compare)
    compare.set_defaults(handler=_cmd_compare)

    check = sub.add_parser("check", help="fail (exit 1) when results regressed past gates against a baseline")
    check.add_argument("results", nargs="+", type=Path, metavar="RESULTS", help="result files or folders")
    check.add_argument("--baseline", required=True, metavar="NAME|PATH", help="saved baseline name, or a path")
    check.add_argument(
        "--fail-on", required=True, metavar="GATES", help='e.g. "latency.p99:10%%,memory.peak_rss:5%%,cost.per_1m:5%%"'
    )
    check.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    check.add_argument("--allow-different-hardware", action="store_true",
                       help="gate against a baseline measured on another machine (fingerprint)")  # fmt: skip
    _add_results_dir(check, results_dir_help)
    _add_strict(check)
    check.set_defaults(handler=_cmd_check)

    baseline = sub.add_parser("baseline", help="save or list named baselines (one per machine kind)")
    actions = baseline.add_subparsers(dest="baseline_command", required=True)
    save = actions.add_parser("save", help="copy results to RESULTS_DIR/baselines/<machine>/<NAME>/")
    save.add_argument("results", nargs="+", type=Path, metavar="RESULTS", help="result files or folders")
    save.add_argument("--name", required=True, help="baseline name, e.g. main")
    _add_results_dir(save)
    save.add_argument("--force", action="store_true", help="replace an existing baseline of that name")
    save.add_argument("--allow-busy", action="store_true", help="save results measured on a busy machine anyway")
    _add_strict(save)
    save.set_defaults(handler=_cmd_baseline_save)
    listing = actions.add_parser("list", help="list saved baselines")
    _add_results_dir(listing)
    listing.set_defaults(handler=_cmd_baseline_list)


def _one_line_warnings(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def console_main() -> NoReturn:
    """The `recbench` command: main(), then an exit without the interpreter's teardown (bench.core.shutdown).
    Output that cannot be written gives one line, not a traceback; any other uncaught exception still ends the
    usual way, with its traceback."""
    from bench.core.shutdown import exit_without_teardown, status_of

    exit_without_teardown(status_of(main))


def main(argv: Sequence[str] | None = None) -> int:
    # SIGTERM (a scheduler, `kill`) ends a run the way Ctrl-C does: message, results kept, exit 130.
    with stop_on_signals():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    command = None
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        warnings.showwarning = _one_line_warnings
        return args.handler(args)
    except InputError as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        hint = "; rerun with --resume to skip them" if command == "run" else ""
        print(f"interrupted: results written so far are kept{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    console_main()
