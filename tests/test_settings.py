"""Settings come from the environment; production values pass Django's deployment checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent

PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "x7Gq2!vN9pR4tL8wZ1cK6mB3hJ5fD0sA-yE7uI2oP9qW4rT6yU1iO3pL5kJ8hG2f",
    "ALLOWED_HOSTS": "referrals.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://referrals.example.com",
    "SITE_URL": "https://referrals.example.com",
    "BEHIND_TLS_PROXY": "true",
    "SECURE_SSL_REDIRECT": "true",
    "INTEGRATIONS_KEYS": "oX0sQ1kMZ4lJd7xUfG1mVn5WkqF5mXcJbq0rL2w2y1E=",
}


def _run_manage(*args: str, extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_VERSION", "SECRET_KEY", "DEBUG")}
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_check_deploy_reports_nothing_with_production_values():
    result = _run_manage("check", "--deploy", "--fail-level", "DEBUG", extra_env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("value", ["", None])
def test_production_refuses_to_start_without_a_secret_key(value):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    if value is not None:
        env["SECRET_KEY"] = value
    result = _run_manage("check", extra_env=env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.django_db
def test_migrations_match_the_models():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_env_example_lists_every_variable_the_settings_read():
    settings_source = (ROOT / "referral_saas" / "settings.py").read_text()
    import re

    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z_]+)"', settings_source))
    read |= set(re.findall(r'os\.environ\.get\("([A-Z_]+)"\)', settings_source))
    read.discard("PYTEST_VERSION")
    listed = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines() if "=" in line}
    assert read - listed == set(), f"add to .env.example: {sorted(read - listed)}"


@pytest.mark.slow
def test_offline_commands_run_from_a_bare_checkout_without_a_secret_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    result = _run_manage("makemigrations", "--check", "--dry-run", extra_env=env)
    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout


@pytest.mark.slow
def test_readme_command_line_examples_work_on_the_embedded_services_without_setting_debug(tmp_path):
    """What `make run` uses (no DATABASE_URL / REDIS_URL): `manage.py createmerchant` works without DEBUG exported."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTEST_VERSION", "SECRET_KEY", "DEBUG", "DATABASE_URL", "REDIS_URL", "REDIS_NAMESPACE")
    }
    env["EMBEDDED_DATA_DIR"] = str(tmp_path / "data")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False
        )

    try:
        settings_seen = run("manage.py", "shell", "-c", "from django.conf import settings; print(settings.DEBUG)")
        assert settings_seen.stdout.strip().endswith("True"), settings_seen.stderr
        assert run("manage.py", "migrate", "-v0").returncode == 0
        created = run("manage.py", "createmerchant", "--name", "Shop", "--owner-email", "a@b.c", "--json")
        assert created.returncode == 0, created.stderr
        assert json.loads(created.stdout)["merchant"] == "shop"
    finally:
        run("-m", "referral_saas.embedded", "stop")


@pytest.mark.slow
def test_manage_py_with_own_services_and_no_debug_says_how_to_run_in_development():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k not in ("SECRET_KEY", "DEBUG")}
    result = _run_manage("createapikey", "--merchant", "nobody", "--mode", "test", extra_env=env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
    assert "DEBUG=true" in result.stderr


def _make_dry_run(target: str) -> str:
    result = subprocess.run(
        ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout


def _uv_sync_flags(dry_run: str) -> list[list[str]]:
    return [line.split()[2:] for line in dry_run.splitlines() if line.split()[1:2] == ["sync"]]


@pytest.mark.parametrize("target", ["run", "install"])
def test_make_run_installs_the_runtime_dependencies_without_the_test_tools(target):
    syncs = _uv_sync_flags(_make_dry_run(target))
    assert syncs, "make run installs through uv sync"
    for flags in syncs:
        assert not [f for f in flags if f.startswith(("--all-extras", "--extra"))], flags
        # What that sync installs (the lock, no extras), read back from uv itself: none of the test tools.
        exported = subprocess.run(
            [str(ROOT / ".tools" / "bin" / "uv"), "export", "--frozen", "--no-hashes", "--no-header"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.lower()
        for tool in ("playwright", "schemathesis", "hypothesis", "pytest"):
            assert f"\n{tool}==" not in f"\n{exported}", tool


@pytest.mark.parametrize("target", ["test", "lint"])
def test_make_test_and_lint_install_the_test_extras(target):
    assert any("--all-extras" in flags for flags in _uv_sync_flags(_make_dry_run(target)))
