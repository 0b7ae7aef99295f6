"""The system as people run it: gunicorn, a Celery worker and beat as OS processes, configured by the files we ship.

`procfile_config()` reads the Procfile (what `make run` starts) and `dockerfile_config()` the Dockerfile's CMD with
docker-compose.yml's worker, beat and environment; only the listening address, the database, the Redis namespace
and the beat schedule file are replaced (and, for a stack on RabbitMQ, CELERY_BROKER_URL set). Tests talk to the
result over HTTP only.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests
from django.conf import settings
from kombu import Connection

from referral_saas.broker import broker_prefix, delete_namespace, is_amqp

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
STARTUP_SECONDS = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rabbitmq_url() -> str | None:
    """The RabbitMQ the broker tests use (TEST_RABBITMQ_URL, else the local guest account), or None when nothing
    listens there."""
    url = os.environ.get("TEST_RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672//"
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), timeout=1).close()
    except OSError:
        return None
    return url


def wait_for(condition, *, timeout: float = 60.0, interval: float = 0.2, what: str = "a condition"):
    """Poll until `condition()` is truthy; return its value. Fails the test (naming `what`) after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# --- the configurations we ship ---------------------------------------------------------------------------------


@dataclass
class ServerConfig:
    name: str
    web: list[str]
    worker: list[str]
    beat: list[str]
    env: dict[str, str] = field(default_factory=dict)


def _bind(argv: list[str], port: int) -> list[str]:
    argv = list(argv)
    index = argv.index("--bind") + 1
    argv[index] = f"127.0.0.1:{port}"
    return argv


def _executable(argv: list[str]) -> list[str]:
    """`.venv/bin/gunicorn` (Procfile) or `gunicorn` on the image's PATH (Dockerfile): this checkout's venv."""
    return [str(VENV_BIN / Path(argv[0]).name), *argv[1:]]


def procfile_config() -> ServerConfig:
    """The Procfile's web, worker and beat, with `make run`'s environment (DEBUG on unless set)."""
    commands = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            commands[name.strip()] = _executable(shlex.split(command))
    return ServerConfig("procfile", commands["web"], commands["worker"], commands["beat"], {"DEBUG": "true"})


def _compose_value(value: str, overrides: dict[str, str]) -> str:
    """docker compose's ${VAR:-default} / ${VAR:?message} with `overrides` as the shell's environment."""

    def replace(match: re.Match) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3)
        if name in overrides:
            return overrides[name]
        if op == ":-":
            return rest
        raise AssertionError(f"docker-compose.yml needs {name}: {rest}")

    return re.sub(r"\$\{(\w+)(:-|:\?)([^}]*)\}", replace, str(value))


def dockerfile_config() -> ServerConfig:
    """The Dockerfile's CMD for web; docker-compose.yml's worker and beat commands and the app environment."""
    import yaml

    cmd = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD "))
    web = _executable(json.loads(cmd[4:]))
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    overrides = {"SECRET_KEY": secrets.token_urlsafe(50)}
    env = {k: _compose_value(v, overrides) for k, v in compose["x-app"]["environment"].items()}
    return ServerConfig(
        "dockerfile",
        web,
        _executable(services["worker"]["command"]),
        _executable(services["beat"]["command"]),
        env,
    )


CONFIGS = {"procfile": procfile_config, "dockerfile": dockerfile_config}


# --- processes --------------------------------------------------------------------------------------------------


class Process:
    """One OS process (and its children, in their own session) with its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.argv = argv
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the process's life
        self.popen = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, marker: str, timeout: float = STARTUP_SECONDS) -> None:
        def seen():
            if not self.alive:
                raise AssertionError(f"{self.name} exited ({self.popen.returncode}):\n{self.output()[-4000:]}")
            return marker in self.output()

        wait_for(seen, timeout=timeout, what=f"{self.name} to print {marker!r}")

    def children(self) -> list[int]:
        """Pids of the process group (the process and its pool/workers)."""
        out = subprocess.run(["pgrep", "-g", str(self.popen.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def kill(self) -> None:
        """SIGKILL the whole group at once: no cleanup, no acknowledgement, no goodbye."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(30)
        self._log.close()

    def stop(self, timeout: float = 30) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        # Whatever the group left behind (a pool child after its parent died).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self._log.close()


def base_env(**extra: str) -> dict[str, str]:
    """This machine's environment as a deployment would have it: not a test run (no PYTEST_VERSION), our venv first."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTEST_VERSION", "PYTEST_CURRENT_TEST"}}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def manage(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@dataclass
class Merchant:
    slug: str
    live_key: str
    test_key: str
    program: str
    owner_email: str
    password: str


class Stack:
    """gunicorn + worker + beat of one configuration, on one database and one Redis namespace."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        database_url: str,
        redis_url: str,
        namespace: str,
        env: dict[str, str] | None = None,
        worker: bool = True,
        beat: bool = True,
        migrate: bool = False,
    ):
        self.config = config
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_dir = Path(tempfile.mkdtemp(prefix=f"rs-system-{config.name}-"))
        self.namespace = namespace
        self.env = base_env()
        self.env.update(config.env)
        self.env.update(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            REDIS_NAMESPACE=namespace,
            SITE_URL=self.base_url,
            BEAT_SCHEDULE_FILE=str(self.log_dir / "celerybeat-schedule"),
            CSRF_TRUSTED_ORIGINS=self.base_url,
            WEBHOOKS_ALLOW_PRIVATE_URLS="true",  # the tests' webhook receiver listens on 127.0.0.1
        )
        self.env.update(env or {})
        self.with_worker, self.with_beat, self.migrate = worker, beat, migrate
        self.processes: dict[str, Process] = {}
        self._merchants = 0

    # lifecycle

    def start(self) -> Stack:
        if self.migrate:  # a database of its own, set up as `make run` does
            self.manage("migrate", "--noinput", "-v0")
        self.start_web()
        if self.with_worker:
            self.start_worker()
        if self.with_beat:
            self.start_beat()
        return self

    def start_web(self) -> None:
        self.processes["web"] = Process("web", _bind(self.config.web, self.port), self.env, self.log_dir)
        wait_for(self._healthy, timeout=STARTUP_SECONDS, what=f"gunicorn ({self.config.name}) to answer /healthz")

    def _healthy(self) -> bool:
        web = self.processes["web"]
        if not web.alive:
            raise AssertionError(f"gunicorn exited:\n{web.output()[-4000:]}")
        try:
            return requests.get(f"{self.base_url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def start_worker(self, name: str = "worker") -> Process:
        argv = [*self.config.worker, "--hostname", f"{name}-{self.port}@%h", "--without-mingle", "--without-gossip"]
        process = Process(name, argv, self.env, self.log_dir)
        process.wait_for_output(" ready.")
        self.processes[name] = process
        return process

    def start_beat(self) -> None:
        argv = list(self.config.beat)
        if "--schedule" in argv:  # docker compose's path inside the image
            argv[argv.index("--schedule") + 1] = self.env["BEAT_SCHEDULE_FILE"]
        process = Process("beat", argv, self.env, self.log_dir)
        process.wait_for_output("beat: Starting")
        self.processes["beat"] = process

    def stop(self, timeout: float = 30) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop(timeout)
        if self.rabbitmq:  # its queues, exchanges and whatever they still hold; never another stack's
            with Connection(self.env["CELERY_BROKER_URL"]) as connection:
                delete_namespace(connection, names=settings.CELERY_QUEUE_NAMES, prefix=broker_prefix(self.namespace))

    @property
    def rabbitmq(self) -> bool:
        return is_amqp(self.env.get("CELERY_BROKER_URL") or "")

    def broker_queue(self, name: str) -> tuple[int, int]:
        """RabbitMQ: (messages ready, consumers) of this stack's queue `name` (unacknowledged ones are not counted:
        stop the workers first to see everything the queue holds)."""
        with Connection(self.env["CELERY_BROKER_URL"]) as connection:
            declared = connection.default_channel.queue_declare(f"{broker_prefix(self.namespace)}{name}", passive=True)
        return declared.message_count, declared.consumer_count

    def logs(self) -> str:
        return "\n".join(
            f"----- {name} ({process.log_path}) -----\n{process.output()[-6000:]}"
            for name, process in self.processes.items()
        )

    def server_errors(self) -> list[str]:
        """Lines of the web log that report a 5xx answered by our code (the access log line of every request)."""
        lines = self.processes["web"].output().splitlines()
        return [line for line in lines if re.search(r'"status": 5\d\d|\s5\d\d$|Internal Server Error', line)]

    # data, through the doors people use

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return manage(*args, env=self.env)

    def createmerchant(self, name: str | None = None, *, currency: str = "PLN") -> Merchant:
        self._merchants += 1
        name = name or f"Shop {self.config.name} {self._merchants} {secrets.token_hex(3)}"
        email = f"owner-{secrets.token_hex(4)}@shop.example"
        password = f"pw-{secrets.token_urlsafe(12)}"
        out = self.manage(
            "createmerchant", "--name", name, "--owner-email", email, "--password", password, "--currency", currency,
            "--demo-program", "--json",
        ).stdout  # fmt: skip
        data = json.loads(out.strip().splitlines()[-1])
        return Merchant(data["merchant"], data["live_key"], data["test_key"], data["program"], email, password)

    def api(self, key: str) -> Api:
        return Api(self.base_url, key)


class Api(requests.Session):
    """The shop's view of us: JSON over HTTP with an API key."""

    def __init__(self, base_url: str, key: str):
        super().__init__()
        self.base_url = base_url
        self.headers["Authorization"] = f"Bearer {key}"

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", 60)
        return super().request(method, f"{self.base_url}{url}" if url.startswith("/") else url, *args, **kwargs)


def database_url(settings_dict: dict, name: str) -> str:
    host = quote(settings_dict["HOST"] or "", safe="")
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    password = f":{quote(settings_dict['PASSWORD'], safe='')}" if settings_dict.get("PASSWORD") else ""
    return f"postgres://{settings_dict['USER']}{password}@{host}{port}/{name}"


def redis_url_host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 6379


def concurrently(count: int, call, *, timeout: float = 120) -> list:
    """Run `call(i)` in `count` threads released at the same instant; return the results in order. Every thread must
    finish, and an exception in any of them fails the test."""
    import threading

    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout)
            results[i] = call(i)
        except BaseException as exc:  # collected and raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.1, deadline - time.monotonic()))
    assert not [t for t in threads if t.is_alive()], "some requests never finished"
    if errors:
        raise errors[0]
    return results


class _FormParser:
    """The fields of the first <form method=post> of a page (not the admin header's log-out form), as a browser
    would submit them untouched."""

    def __init__(self, html: str):
        from html.parser import HTMLParser

        self.fields: dict[str, str] = {}
        self.options: dict[str, list[tuple[str, str]]] = {}
        fields, options = self.fields, self.options
        state = {"select": None, "textarea": None, "in_form": False, "done": False}

        class Parser(HTMLParser):
            def handle_starttag(self, tag, attrs):
                a = dict(attrs)
                if (
                    tag == "form"
                    and (a.get("method") or "").lower() == "post"
                    and a.get("id") != "logout-form"
                    and not state["done"]
                ):
                    state["in_form"] = True
                if not state["in_form"] or ("name" not in a and tag != "option"):
                    return
                if tag == "input":
                    kind = (a.get("type") or "text").lower()
                    if kind in {"checkbox", "radio"}:
                        if "checked" in a:
                            fields[a["name"]] = a.get("value", "on")
                    elif kind not in {"submit", "button", "file", "image"}:
                        fields[a["name"]] = a.get("value") or ""
                elif tag == "select":
                    state["select"] = a["name"]
                    options[a["name"]] = []
                    fields.setdefault(a["name"], "")
                elif tag == "option" and state["select"]:
                    options[state["select"]].append((a.get("value", ""), ""))
                    if "selected" in a:
                        fields[state["select"]] = a.get("value", "")
                elif tag == "textarea":
                    state["textarea"] = a["name"]
                    fields[a["name"]] = ""

            def handle_endtag(self, tag):
                if tag == "select":
                    state["select"] = None
                elif tag == "textarea":
                    state["textarea"] = None
                elif tag == "form" and state["in_form"]:
                    state["in_form"], state["done"] = False, True

            def handle_data(self, data):
                if state["textarea"]:
                    fields[state["textarea"]] += data
                elif state["select"] and options[state["select"]]:
                    value, label = options[state["select"]][-1]
                    options[state["select"]][-1] = (value, label + data.strip())

        Parser().feed(html)


class Browser(requests.Session):
    """A merchant's browser: signs in with email and password, fills the admin's forms like a person."""

    def __init__(self, base_url: str):
        super().__init__()
        self.base_url = base_url

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", 60)
        url = f"{self.base_url}{url}" if url.startswith("/") else url
        kwargs.setdefault("headers", {}).setdefault("Referer", url)
        return super().request(method, url, *args, **kwargs)

    def form(self, path: str) -> _FormParser:
        page = self.get(path)
        assert page.status_code == 200, (path, page.status_code)
        return _FormParser(page.text)

    def submit(self, path: str, **changes: str) -> requests.Response:
        """Load the form at `path`, change some fields (a label picks a select's option), post it back."""
        form = self.form(path)
        data = dict(form.fields)
        for name, value in changes.items():
            choices = form.options.get(name)
            if choices and value not in {v for v, _ in choices}:
                value = next(v for v, label in choices if label == value)
            data[name] = value
        return self.post(path, data=data, allow_redirects=False)

    def sign_in(self, email: str, password: str) -> None:
        response = self.submit("/accounts/login/", login=email, password=password)
        assert response.status_code == 302, response.text[-2000:]


class HangingRedis:
    """A Redis that accepts connections and never answers (a stuck server, a black-holed network path)."""

    def __init__(self):
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.url = f"redis://127.0.0.1:{self.sock.getsockname()[1]}/0"
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)  # read nothing, answer nothing

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive()
        for conn in self.accepted:
            conn.close()
        self.sock.close()


class EmbeddedPostgres:
    """A PostgreSQL of the test's own (pgserver's binaries), which it may stop and start: never the shared one."""

    def __init__(self, directory: Path):
        import pgserver

        self.pgdata = directory / "data"
        self.pgdata.mkdir(parents=True)
        server = pgserver.get_server(self.pgdata, cleanup_mode=None)
        self.user = server.system_user
        self.socket_dir = server.get_postmaster_info().socket_dir

    def url(self, database: str) -> str:
        return f"postgres://postgres@{quote(str(self.socket_dir), safe='')}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg2

        conn = psycopg2.connect(host=str(self.socket_dir), user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.url(name)

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl

        pg_ctl(list(args), pgdata=self.pgdata, user=self.user, timeout=60)

    def stop(self) -> None:
        self._pg_ctl("-w", "-m", "fast", "stop")  # every connection is cut, as in a restart or a failover

    def start(self) -> None:
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.pgdata / "log"), "start")

    def destroy(self) -> None:
        import shutil

        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.pgdata.parent, ignore_errors=True)
