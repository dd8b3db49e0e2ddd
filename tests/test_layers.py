"""Layers point one way: a package may import only from packages below it (and from itself). The order is
also the reading order of the code, from the vocabulary at the bottom to the command line at the top."""

from __future__ import annotations

import ast
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"

# Bottom to top. `results` (the typed result and its reader) sits below `measurement`, which builds results,
# and below everything that reads them.
LAYERS = (
    "core",  # vocabulary, errors, statistics, atomic writes, formatting, YAML reading
    "data",
    "models",
    "hardware",
    "trackers",
    "scenarios",
    "loop",
    "load",
    "results",
    "measurement",
    "execution",  # where points run: this process or a Ray cluster
    "runner",
    "cost",
    "compare",
    "report",
    "console",
    "cli",
)
RANK = {name: rank for rank, name in enumerate(LAYERS)}


def package_of(path: Path) -> str:
    relative = path.relative_to(BENCH)
    return relative.parts[0].removesuffix(".py") if len(relative.parts) > 1 or relative.stem != "__init__" else ""


def imported_packages(path: Path) -> set[str]:
    """bench packages imported anywhere in the module, function-level imports included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "bench" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_every_package_has_a_layer():
    packages = {package_of(path) for path in BENCH.rglob("*.py")} - {""}
    assert packages == set(LAYERS)


def test_no_import_goes_up_a_layer():
    upward = []
    for path in sorted(BENCH.rglob("*.py")):
        package = package_of(path)
        if not package:
            continue  # bench/__init__.py: the version string only
        for imported in imported_packages(path):
            if RANK[imported] > RANK[package]:
                upward.append(f"{path.relative_to(BENCH)} ({package}) imports bench.{imported}")
    assert upward == []


def test_writing_markdown_and_html_needs_no_matplotlib():
    for module in ("render.py", "figures.py", "captions.py", "build.py"):
        tree = ast.parse((BENCH / "report" / module).read_text())
        top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = {a.name for n in top_level for a in n.names} | {
            n.module for n in top_level if isinstance(n, ast.ImportFrom) and n.module
        }
        assert not any("matplotlib" in name or name == "bench.report.plots" for name in names), module
