"""Saved baselines: named, frozen copies of results to compare later runs against, one set per machine kind.

Workflow:

1. On a machine, run the scenarios you care about: `recbench run scenarios/quickstart.yaml`.
2. Freeze those results under a name: `recbench baseline save results/<machine> --name main`. They are copied
   (atomically, never overwriting: an existing name is refused unless --force) to
   `results/baselines/<machine>/main/` with a `manifest.json` (name, created_at, machine, git commit, source
   files). Only the newest result of each (scenario, point) is kept. Results from several machines are
   refused: a baseline belongs to one machine kind, since timings do not transfer between machines.
3. After a change, run the same scenarios again and gate on the new results:
   `recbench check --baseline main --fail-on "latency.p99:10%,memory.peak_rss:5%,cost.per_1m:5%" NEW...`
   (NEW: the new result files, e.g. results/<machine>/<timestamp>-quickstart-default.json).
   A name is looked up under `results/baselines/<machine the new results come from>/`, so the same name (say
   `main`) can exist once per machine kind and each machine gates against its own. `--baseline` also takes a
   path to result files or folders. `recbench compare main NEW...` prints the full table.
4. Move the baseline forward deliberately: `recbench baseline save NEW... --name main --force`.

`recbench run` writes into `results/<machine>/` and never into `baselines/`; folders given to
compare/check/show skip `baselines/` below them, so saved copies are never mistaken for new runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import __version__
from bench.compare.pairing import load_side
from bench.core.errors import InputError
from bench.core.io import atomic_write_json
from bench.core.kinds import WarningKind
from bench.core.names import check_safe_name, inside, is_safe_name
from bench.results.reader import BASELINES_DIR, MANIFEST, StoredResult
from bench.results.store import result_filename


def baselines_root(results_dir: Path | str) -> Path:
    return Path(results_dir) / BASELINES_DIR


def check_name(name: str) -> str:
    if isinstance(name, str) and name.endswith(".json"):
        raise InputError(f"--name: {name!r} is not a baseline name (it ends in .json)")
    return check_safe_name(name, what="--name")


def baseline_folder(results_dir: Path | str, machine: str, name: str) -> Path:
    """results_dir/baselines/<machine>/<name>, each part a safe name and the whole inside the results folder."""
    machine = check_safe_name(machine, what="result machine")
    return inside(baselines_root(results_dir), machine, check_name(name))


def save_baseline(
    results: Sequence[Path | str],
    *,
    name: str,
    results_dir: Path | str = Path("results"),
    force: bool = False,
    allow_busy: bool = False,
    strict: bool = False,
) -> Path:
    """Copy results into results_dir/baselines/<machine>/<name>/ with a manifest; returns that folder.

    The folder is built beside its final place and renamed into it, so it appears whole or not at all.
    Refuses (InputError) an existing name unless `force`, results measured on a busy machine unless
    `allow_busy`, results from more than one machine, and no results.
    """
    check_name(name)
    side = load_side(results, name="baseline save", strict=strict)
    chosen = sorted(side.chosen.values(), key=lambda r: r.key)
    machines = sorted(side.machines)  # of every result given: an older run from another machine counts too
    if len(machines) > 1:
        raise InputError(
            f"baseline save: results from {len(machines)} machines ({', '.join(machines)}); save one "
            f"baseline per machine kind"
        )
    busy = [r for r in chosen if r.result.warnings_of(WarningKind.BUSY_MACHINE)]
    if busy and not allow_busy:
        raise InputError(
            f"baseline save: {busy[0].path} was measured on a busy machine ({len(busy)} of {len(chosen)} results): "
            "its timings are inflated; rerun on a quiet machine, or pass --allow-busy"
        )
    machine = machines[0]
    final = baseline_folder(results_dir, machine, name)
    folder = final.parent
    if final.exists() and not force:
        raise InputError(
            f"{final}: baseline {name!r} already exists for machine {machine}; "
            f"use --force to replace it, or another --name"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder, prefix=f".{name}.tmp-"))
    except OSError as exc:
        raise InputError(f"{folder}: cannot write a baseline there ({exc.strerror})") from None
    try:
        stored = _copy_results(chosen, staging)
        superseded = [_as_recorded(r.path) for older in side.superseded.values() for r in older]
        atomic_write_json(staging / MANIFEST, _manifest(name, machine, chosen, stored, superseded))
        _publish(staging, final, force=force)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return final


def _copy_results(results: list[StoredResult], staging: Path) -> list[str]:
    names = []
    for stored in results:
        base = result_filename(*stored.key, stored.created_at)
        candidate, attempt = staging / base, 0
        while candidate.exists():
            attempt += 1
            candidate = staging / f"{base.removesuffix('.json')}-{attempt}.json"
        atomic_write_json(candidate, stored.result.model_dump(mode="json"))
        names.append(candidate.name)
    return names


def _manifest(
    name: str, machine: str, results: list[StoredResult], stored: list[str], superseded: list[str]
) -> dict[str, Any]:
    commits = sorted({c for r in results if (c := r.result.environment.git_commit)})
    return {
        "name": name,
        "created_at": datetime.now(timezone.utc).isoformat(),
        "machine": machine,
        # The commit the results were measured at (None when they span several: see each source).
        "git_commit": commits[0] if len(commits) == 1 else None,
        "git_dirty": any(bool(r.result.environment.git_dirty) for r in results),
        "recbench_version": __version__,
        "sources": [
            {
                "file": _as_recorded(r.path),
                "stored_as": stored_name,
                "scenario": r.key[0],
                "point": r.key[1],
                "created_at": r.created_at.isoformat(),
                "git_commit": r.result.environment.git_commit,
            }
            for r, stored_name in zip(results, stored, strict=True)
        ],
        "superseded_not_copied": superseded,  # older results of the same points, given but not kept
    }


def _as_recorded(path: Path) -> str:
    """A source's path as the manifest keeps it: relative to the working folder where it lies inside it, else its
    name alone. An absolute path would carry one machine's folders (a temporary one, even) into a baseline that
    is committed and read elsewhere."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return resolved.name


def _publish(staging: Path, final: Path, *, force: bool) -> None:
    """Rename the staged folder into place; with force, an existing baseline is moved aside first and removed
    once the new one is in place."""
    old = None
    if final.exists():
        if not force:
            raise InputError(f"{final}: baseline already exists; use --force to replace it")
        old = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.old-"))
        os.rename(final, old / final.name)
    try:
        os.rename(staging, final)  # fails if a concurrent save created `final` meanwhile (non-empty folder)
    except OSError as exc:
        if old is not None:
            os.rename(old / final.name, final)
            shutil.rmtree(old, ignore_errors=True)
        raise InputError(f"{final}: could not put the baseline in place ({exc.strerror})") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def list_baselines(results_dir: Path | str = Path("results")) -> list[tuple[str, str, dict[str, Any]]]:
    """(machine, name, manifest) for every saved baseline under results_dir/baselines."""
    import json

    root = baselines_root(results_dir)
    found = []
    for manifest in sorted(root.glob(f"*/*/{MANIFEST}")):
        if manifest.parent.name.startswith("."):  # a save in progress, or a replaced one being removed
            continue
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        found.append((manifest.parent.parent.name, manifest.parent.name, data if isinstance(data, dict) else {}))
    return found


def resolve_baseline(
    spec: str | Path, *, results_dir: Path | str, machines: Sequence[str], argument: str = "--baseline"
) -> Path:
    """The baseline `argument` names (`--baseline` of check, `BASELINE` of compare): an existing result file or
    folder, or the name of a baseline saved for the machine the current results were measured on
    (results_dir/baselines/<machine>/<name>)."""
    text = str(spec).strip()
    if not text:
        raise InputError(f"{argument}: empty; give a baseline name or a result file or folder")
    path = Path(text)
    if path.exists():
        return path
    if not is_safe_name(text) or "/" in text or os.sep in text or text.endswith(".json"):
        raise InputError(f"{argument}: {text}: no such result file or folder")
    root = baselines_root(results_dir)
    machines = sorted(set(machines))
    if len(machines) == 1 and baseline_folder(results_dir, machines[0], text).is_dir():
        return baseline_folder(results_dir, machines[0], text)
    saved = [(m, n) for m, n, _ in list_baselines(results_dir) if n == text]
    if len(machines) > 1:
        raise InputError(
            f"{argument}: {text!r}: the results come from several machines ({', '.join(machines)}); "
            f"check each machine's results separately, or pass the baseline's path"
        )
    elsewhere = f"; saved for other machines: {', '.join(m for m, _ in saved)}" if saved else ""
    raise InputError(
        f"{argument}: {text}: no such result file or folder, nor a baseline saved as {text!r} for "
        f"machine {machines[0] if machines else '?'} under {root}{elsewhere}"
    )


def baseline_for(
    spec: str | Path,
    current: Sequence[Path | str],
    *,
    results_dir: Path | str,
    strict: bool = False,
    argument: str = "--baseline",
) -> Path:
    """resolve_baseline for the machine(s) the `current` results were measured on."""
    path = Path(str(spec).strip())
    if str(spec).strip() and path.exists():
        return path
    machines = [r.machine for r in load_side(current, name="current", strict=strict).chosen.values()]
    return resolve_baseline(spec, results_dir=results_dir, machines=machines, argument=argument)
