"""The house plan (docs/architecture.md): referral_saas <- programs <- tracking <- fraud <- rewards <- analytics <-
portal | integrations (two clients on top, side by side: neither imports the other). An app imports only the apps
below it, at module level: a lower app that must make a higher one act sends a signal or enqueues a task by name.
Checked twice: by our own walk of every import statement (inside functions too), and by import-linter's contract in
pyproject.toml (what `make lint` runs)."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import grimp
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAYERS = ["referral_saas", "programs", "tracking", "fraud", "rewards", "analytics", "portal", "integrations"]
# Apps on the same floor (the last two): neither may import the other.
SIDE_BY_SIDE = {"portal": {"integrations"}, "integrations": {"portal"}}
OURS = {*LAYERS, "bench"}  # bench/ is ours too: no app may reach into it
# The composition root: the project's URLconf routes to every app's views (as settings names every app).
ROUTES_TO_EVERY_APP = {"referral_saas/urls.py"}
# Imports that must wait until Django is set up: the WSGI entry point and validators that settings-time code loads.
# An AppConfig.ready() connects an app's signal receivers and hooks, which is what it is for.
LAZY_ON_PURPOSE = {"referral_saas/wsgi.py", "referral_saas/validators.py"}


def _modules(app: str):
    for path in sorted((ROOT / app).rglob("*.py")):
        relative = path.relative_to(ROOT)
        if "migrations" not in relative.parts:
            yield str(relative), ast.parse(path.read_text(), filename=str(path))


def _imported(node) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module]
    return []


@pytest.mark.parametrize("app", LAYERS)
def test_each_app_imports_only_the_apps_below_it(app):
    above = set(LAYERS[LAYERS.index(app) + 1 :]) | SIDE_BY_SIDE.get(app, set())
    upward = [
        f"{name}:{node.lineno} imports {module}"
        for name, tree in _modules(app)
        if name not in ROUTES_TO_EVERY_APP
        for node in ast.walk(tree)
        for module in _imported(node)
        if module.split(".")[0] in above
    ]
    assert upward == []


@pytest.mark.parametrize("app", LAYERS)  # not bench/: its scripts set Django up in main(), then load models
def test_our_modules_are_imported_at_the_top_of_a_module_never_inside_a_function(app):
    """An import inside a function hides a dependency (and usually dodges a circle)."""
    hidden = []
    for name, tree in _modules(app):
        if name in LAZY_ON_PURPOSE:
            continue
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if name.endswith("apps.py") and function.name == "ready":
                continue
            hidden += [
                f"{name}:{node.lineno} {function.name}() imports {module}"
                for node in ast.walk(function)
                for module in _imported(node)
                if module.split(".")[0] in OURS
            ]
    assert sorted(set(hidden)) == []


def test_the_import_contract_of_pyproject_is_kept():
    lint_imports = pathlib.Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Contracts: 1 kept, 0 broken." in result.stdout


def test_no_module_of_ours_takes_part_in_an_import_circle():
    """Module by module, inside an app too (a service importing its task that imports the service...)."""

    graph = grimp.build_graph(*LAYERS, cache_dir=None)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while (top := stack.pop()) != module:
                component.append(top)
            if component:
                circles.append(sorted([module, *component]))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    assert circles == []
