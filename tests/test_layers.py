"""The apps' direction (DESIGN.md): referral_saas <- programs <- tracking <- fraud <- rewards <- analytics, with the
referrer portal on top. An app imports only what is below it, lazily inside a function too. Checked here for the
portal and analytics, the top of the stack: the admin home page and the CSV export, which the apps below use, live in
the core; the portal's pages, forms, sign-in links and invitation emails live in portal/."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAYERS = ["referral_saas", "programs", "tracking", "fraud", "rewards", "analytics", "portal"]


def _imported_apps(path: pathlib.Path) -> set[str]:
    apps = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            apps.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            apps.add(node.module.split(".")[0])
    return apps


def _importers(app: str, imported: str) -> list[str]:
    return [
        str(path.relative_to(ROOT)) for path in sorted((ROOT / app).rglob("*.py")) if imported in _imported_apps(path)
    ]


@pytest.mark.parametrize("app", LAYERS[:-1])
def test_no_app_below_the_portal_imports_the_portal(app):
    assert _importers(app, "portal") == []


@pytest.mark.parametrize("app", LAYERS[: LAYERS.index("analytics")])
def test_no_app_below_analytics_imports_analytics(app):
    assert _importers(app, "analytics") == []
