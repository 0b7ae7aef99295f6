"""docker-compose.yml runs the same stack as `make run`, as separate services with health checks."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _command(service: dict) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else command


def test_compose_has_the_five_services_with_their_images_and_commands():
    services = _compose()["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    assert _command(services["web"]).startswith("gunicorn referral_saas.wsgi")
    assert "celery -A referral_saas worker" in _command(services["worker"])
    for queue in ("default", "clicks", "rewards", "fraud", "webhooks", "analytics", "integrations"):
        assert queue in _command(services["worker"])
    assert "celery -A referral_saas beat" in _command(services["beat"])


def test_app_services_build_from_the_repository_dockerfile_and_point_at_the_compose_services():
    services = _compose()["services"]
    assert (ROOT / "Dockerfile").exists()
    for name in ("web", "worker", "beat"):
        assert services[name]["build"] == "."
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://")
        assert "@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["DEBUG"] == "false"


def test_services_have_health_checks_and_postgres_keeps_its_data_in_a_volume():
    compose = _compose()
    services = compose["services"]
    for name in ("postgres", "redis", "web", "worker"):
        assert "test" in services[name]["healthcheck"], name
    assert any(v.endswith(":/var/lib/postgresql/data") for v in services["postgres"]["volumes"])
    assert "postgres-data" in compose["volumes"]
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_compose_web_runs_the_dockerfiles_server_command():
    import json

    cmd = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD "))
    assert _compose()["services"]["web"]["command"] == json.loads(cmd[4:])


def test_the_shop_integrations_settings_reach_every_app_service_from_the_env_file():
    # Without them in the containers a Shopify app cannot be installed and stored shop tokens are encrypted with a
    # key derived from SECRET_KEY (README "Connect your shop").
    services = _compose()["services"]
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        for variable in ("INTEGRATIONS_KEYS", "SHOPIFY_CLIENT_ID", "SHOPIFY_CLIENT_SECRET", "SHOPIFY_SCOPES"):
            assert env[variable].startswith("${" + variable), (name, variable)
