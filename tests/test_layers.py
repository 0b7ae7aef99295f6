"""The apps' direction (DESIGN.md): referral_saas <- programs <- tracking <- fraud <- rewards <- analytics. An app
imports only what is below it, lazily inside a function too. Checked here for analytics, the top of the stack: the
admin home page and the CSV export, which the apps below use, live in the core."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAYERS = ["referral_saas", "programs", "tracking", "fraud", "rewards", "analytics"]


def _imported_apps(path: pathlib.Path) -> set[str]:
    apps = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            apps.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            apps.add(node.module.split(".")[0])
    return apps


@pytest.mark.parametrize("app", LAYERS[:-1])
def test_no_app_below_analytics_imports_analytics(app):
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / app).rglob("*.py"))
        if "analytics" in _imported_apps(path)
    ]
    assert offenders == []
