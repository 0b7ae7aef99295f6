"""The system tier's fixtures: a database of its own, the shipped configurations running as OS processes, and a
local HTTP server standing in for a shop's webhook endpoint."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
import pytest
from django.conf import settings

from tests.system.stack import CONFIGS, Stack, base_env, database_url, manage, rabbitmq_url

pytestmark = pytest.mark.slow


def _maintenance_connection():
    s = settings.DATABASES["default"]
    conn = psycopg2.connect(
        dbname="postgres", user=s["USER"], password=s.get("PASSWORD") or None, host=s["HOST"] or None,
        port=s.get("PORT") or None,
    )  # fmt: skip
    conn.autocommit = True
    return conn


def _drop(cursor, name: str) -> None:
    cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
    cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(scope="package")
def system_database() -> str:
    """A database of this run's own, migrated by the command `make run` uses; dropped at the end."""
    name = f"{settings.DATABASES['default']['TEST']['NAME']}_system"
    conn = _maintenance_connection()
    with conn.cursor() as cursor:
        _drop(cursor, name)
        cursor.execute(f'CREATE DATABASE "{name}"')
    url = database_url(settings.DATABASES["default"], name)
    # Static files of this process's own: under `make test` (pytest-xdist) another process may be collecting them
    # at the same time, and two collectstatic runs into one STATIC_ROOT delete each other's files. The stacks this
    # process starts inherit it (base_env copies the environment).
    static_root = tempfile.mkdtemp(prefix="rs-system-static-")
    os.environ["STATIC_ROOT"] = static_root
    env = base_env(DEBUG="true", DATABASE_URL=url, REDIS_URL=settings.REDIS_URL, REDIS_NAMESPACE=_namespace("setup"))
    manage("migrate", "--noinput", "-v0", env=env)
    # The Dockerfile's image runs with hashed static file names (collectstatic at build time).
    manage("collectstatic", "--noinput", "-v0", env={**env, "DEBUG": "false", "STATIC_MANIFEST": "true"})
    yield url
    with conn.cursor() as cursor:
        _drop(cursor, name)
    conn.close()
    os.environ.pop("STATIC_ROOT", None)
    shutil.rmtree(static_root, ignore_errors=True)


@pytest.fixture
def own_database(system_database) -> str:
    """An empty database of the test's own (start its stack with migrate=True), dropped after it. For a test whose
    stack runs no beat on purpose: the package's stacks run beat, whose sweeper would finish work in the shared
    database before the broker's redelivery the test is about."""
    name = f"{settings.DATABASES['default']['TEST']['NAME']}_own"
    conn = _maintenance_connection()
    with conn.cursor() as cursor:
        _drop(cursor, name)
        cursor.execute(f'CREATE DATABASE "{name}"')
    yield database_url(settings.DATABASES["default"], name)
    with conn.cursor() as cursor:
        _drop(cursor, name)
    conn.close()


def _namespace(name: str) -> str:
    # Under the run's namespace: its keys are removed with the run's, and no other run's are touched.
    return f"{settings.REDIS_NAMESPACE}:sys-{name}"


def broker_env(broker: str) -> dict[str, str]:
    """The environment that picks the Celery broker: nothing for Redis (the default), CELERY_BROKER_URL for RabbitMQ
    (the test is skipped when none listens)."""
    if broker == "redis":
        return {}
    assert broker == "rabbitmq", broker
    url = rabbitmq_url()
    if url is None:
        pytest.skip("no RabbitMQ listens on 127.0.0.1:5672 (or TEST_RABBITMQ_URL)")
    return {"CELERY_BROKER_URL": url}


def start_stack(
    config_name: str, database: str, *, name: str | None = None, broker: str = "redis", env=None, **kwargs
) -> Stack:
    stack = Stack(
        CONFIGS[config_name](),
        database_url=database,
        redis_url=settings.REDIS_URL,
        namespace=_namespace(name or config_name),
        env={**broker_env(broker), **(env or {})},
        **kwargs,
    )
    try:
        return stack.start()
    except BaseException:
        print(stack.logs())
        stack.stop()
        raise


@pytest.fixture(scope="package", params=["procfile", "dockerfile"])
def stack(request, system_database) -> Stack:
    """gunicorn, a worker and beat as the Procfile (`make run`) and as the Dockerfile/docker-compose run them.
    A test that matters on either broker asks for "procfile+rabbitmq" too (indirect parametrization)."""
    config_name, _, broker = request.param.partition("+")
    running = start_stack(config_name, system_database, name=request.param, broker=broker or "redis")
    yield running
    running.stop()


@pytest.fixture
def stacks(system_database, request):
    """Start stacks of one's own (faults, load): `stacks("procfile", name="kill", env={...}, beat=False)`.
    Stopped after the test; their logs are shown when it fails."""
    started: list[Stack] = []

    def start(config_name: str, *, name: str, database: str | None = None, **kwargs) -> Stack:
        running = start_stack(config_name, database or system_database, name=name, **kwargs)
        started.append(running)
        request.node.started_stacks = started
        return running

    yield start
    for running in started:
        running.stop(timeout=10)


@pytest.fixture(autouse=True)
def _no_server_errors(request):
    """No test of this tier may leave a 5xx in the web log of the stack it used."""
    stacks = [request.getfixturevalue(n) for n in request.fixturenames if n == "stack"]
    marks = {id(s): len(s.processes["web"].output().splitlines()) for s in stacks}
    yield
    for s in stacks:
        new = s.processes["web"].output().splitlines()[marks[id(s)] :]
        errors = [line for line in new if line in set(s.server_errors())]
        assert errors == [], "the server answered 5xx:\n" + "\n".join(errors[:20])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        running = [item.funcargs["stack"]] if "stack" in getattr(item, "funcargs", {}) else []
        running += getattr(item, "started_stacks", [])
        for each in running:
            with contextlib.suppress(Exception):
                report.sections.append((f"system logs ({each.namespace})", each.logs()))


class WebhookReceiver:
    """A shop's webhook endpoint: records every delivery (headers and raw body, and when it came) and answers 200
    (or 503 to the next few, after `fail_next(n)`)."""

    def __init__(self):
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.arrived_at: list[float] = []  # time.monotonic() of each delivery
        self._failures_left = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.deliveries.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    receiver.arrived_at.append(time.monotonic())
                    failing, receiver._failures_left = receiver._failures_left > 0, max(0, receiver._failures_left - 1)
                self.send_response(503 if failing else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def fail_next(self, count: int) -> None:
        with self._lock:
            self._failures_left = count

    def events(self) -> list[dict]:
        with self._lock:
            return [json.loads(body) for _headers, body in self.deliveries]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def webhook_receiver():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


def pytest_collection_modifyitems(config, items):
    # Real processes take their time to start and to drain; none of these waits is a measurement.
    for item in items:
        if "tests/system/" in str(item.fspath) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(600))
