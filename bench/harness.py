"""Benchmark plumbing: a throwaway database and Redis db, a gunicorn server, ab/wrk runs and their parsing.

Everything a benchmark compares runs in the same process tree, with the same server settings, one after the
other, so ratios are fair even though absolute numbers depend on the machine.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BENCH_REDIS_DB = "14"


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def ensure_tools() -> None:
    """ab (exact request counts) and wrk (scripted bodies) from Debian's packages."""
    missing = [tool for tool in ("ab", "wrk") if not shutil.which(tool)]
    if not missing:
        return
    packages = {"ab": "apache2-utils", "wrk": "wrk"}
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit(f"missing {', '.join(missing)}: install {' '.join(packages[t] for t in missing)} (Debian/Ubuntu)")
    say(f"installing {', '.join(packages[t] for t in missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *(packages[t] for t in missing)], check=True, env=env)


def bench_environment() -> dict[str, str]:
    """DATABASE_URL / REDIS_URL of a benchmark-only database and Redis db on the same servers as the app's."""
    import environ
    import psycopg2

    config = environ.Env.db_url_config(os.environ["DATABASE_URL"])
    bench_name = f"{config['NAME']}_bench"
    conn = psycopg2.connect(
        host=unquote(config["HOST"] or "") or None,
        port=config["PORT"] or None,
        user=config["USER"] or "postgres",
        password=config["PASSWORD"] or None,
        dbname="postgres",
    )
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [bench_name])
        cur.execute(f'DROP DATABASE IF EXISTS "{bench_name}"')
        cur.execute(f'CREATE DATABASE "{bench_name}"')
    conn.close()
    db_url = urlsplit(os.environ["DATABASE_URL"])
    bench_db = urlunsplit((db_url.scheme, db_url.netloc, "/" + quote(bench_name), db_url.query, ""))
    redis_url = re.sub(r"/\d*$", "", os.environ["REDIS_URL"]) + "/" + BENCH_REDIS_DB
    return {
        "DATABASE_URL": bench_db,
        "REDIS_URL": redis_url,
        # Keys, click stream and Celery queues of this benchmark database only: benchmarks of other checkouts on the
        # same machine share Redis database 14 and must not consume (or delete) each other's clicks and tasks.
        "REDIS_NAMESPACE": f"bench-{bench_name}",
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "STATIC_MANIFEST": "false",
        "BENCH_ENDPOINTS": "true",
        "API_RATE_LIMIT_PER_MINUTE": "0",
        "LOG_LEVEL": "INFO",
        "SITE_URL": "http://127.0.0.1:8000",
    }


def redis_clear() -> int:
    """Delete this benchmark's Redis keys (its namespace), not the whole database: others may be using it."""
    from django.conf import settings

    from referral_saas.redis_client import get_redis

    client, deleted = get_redis(), 0
    for key in client.scan_iter(match=f"{settings.REDIS_NAMESPACE}:*", count=1000):
        deleted += client.delete(key)
    return deleted


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class ServerConfig:
    """A web server configuration we ship: its name, where it comes from and gunicorn's arguments."""

    name: str
    source: str
    args: tuple[str, ...]  # gunicorn's options, without the executable, the app and --bind

    @property
    def label(self) -> str:
        return f"{self.name} (`gunicorn {' '.join(self.args)}`)"


def _gunicorn_options(argv: list[str]) -> tuple[str, ...]:
    """gunicorn's options from a shipped command line, minus what a benchmark replaces: the executable, the WSGI
    app, --bind (a free port) and --reload (development only: `make run` restarts on code changes; a production run
    and these benchmarks do not)."""
    options, skip = [], False
    for arg in argv[1:]:
        if skip:
            skip = False
        elif arg in ("--bind", "-b"):
            skip = True
        elif arg != "--reload" and arg != "referral_saas.wsgi" and not arg.startswith("--bind="):
            options.append(arg)
    return tuple(options)


def shipped_servers() -> list[ServerConfig]:
    """The Procfile's web line (`make run`, `honcho start`) and the Dockerfile's CMD (docker-compose's web), read
    from those files, so that a change of either is what the next benchmark measures."""
    import json
    import shlex

    procfile = next(
        line.split(":", 1)[1] for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")
    )
    cmd = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD "))
    return [
        ServerConfig("Procfile", "Procfile `web:`", _gunicorn_options(shlex.split(procfile))),
        ServerConfig("Dockerfile", "Dockerfile `CMD`", _gunicorn_options(json.loads(cmd[4:]))),
    ]


@contextlib.contextmanager
def gunicorn(env: dict[str, str], server: ServerConfig, log: Path | None = None) -> Iterator[str]:
    """gunicorn as `server` runs it (no reload); its output (one JSON access line per request) goes to `log`, or to
    /dev/null (still formatted)."""
    port = free_port()
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "referral_saas.wsgi", "--bind", f"127.0.0.1:{port}", *server.args],
        cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # a busy shared machine can take a minute to import Django four times
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        if log:
            out.close()


@dataclass
class LoadResult:
    tool: str
    url: str
    connections: int
    requests: int
    failed: int
    non_2xx_3xx: int
    rps: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int] | None = None  # per status code, where the wrk script counts them
    replayed: int = 0  # answers replayed under an Idempotency-Key sent before, where the wrk script counts them

    def row(self, label: str) -> str:
        return (
            f"| {label} | {self.connections} | {self.requests} | {self.rps:,.0f} | {self.p50_ms:.1f} | "
            f"{self.p99_ms:.1f} | {self.failed + self.non_2xx_3xx + self.replayed} |"
        )


def ab(url: str, *, requests: int, connections: int, headers: list[str] | None = None) -> LoadResult:
    """ApacheBench: exactly `requests` requests (so counts can be checked afterwards).

    ab calls every non-2xx response an error; here 302 is the expected answer, so only transport failures count.
    """
    cmd = ["ab", "-q", "-n", str(requests), "-c", str(connections), "-s", "30"]
    for header in headers or []:
        cmd += ["-H", header]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout

    def number(pattern: str, default: float = 0.0) -> float:
        match = re.search(pattern, out)
        return float(match.group(1)) if match else default

    return LoadResult(
        tool="ab",
        url=url,
        connections=connections,
        requests=int(number(r"Complete requests:\s+(\d+)")),
        failed=int(number(r"Failed requests:\s+(\d+)")),
        non_2xx_3xx=0,
        rps=number(r"Requests per second:\s+([\d.]+)"),
        p50_ms=number(r"\s50%\s+(\d+)"),
        p99_ms=number(r"\s99%\s+(\d+)"),
    )


def wrk(url: str, *, seconds: int, connections: int, threads: int = 2, script: Path | None = None,
        env: dict[str, str] | None = None) -> LoadResult:  # fmt: skip
    """wrk for scripted requests (unique bodies); latency percentiles from --latency."""
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True, env={**os.environ, **(env or {})})
    text = out.stdout

    def latency(pct: str) -> float:
        match = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", text)
        if not match:
            return 0.0
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    statuses = {int(s): int(n) for s, n in re.findall(r"^status (\d+): (\d+)$", text, flags=re.M)}
    return LoadResult(
        tool="wrk",
        url=url,
        connections=connections,
        requests=int(re.search(r"(\d+) requests in", text).group(1)),
        failed=sum(int(g) for g in errors.groups()) if errors else 0,
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        p50_ms=latency("50"),
        p99_ms=latency("99"),
        statuses=statuses,
        replayed=int(replayed.group(1)) if (replayed := re.search(r"^replayed (\d+)$", text, flags=re.M)) else 0,
    )


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({cpu}), Python {sys.version.split()[0]}"


def write_section(name: str, markdown: str) -> Path:
    """Replace (or append) the `name` section of docs/benchmarks.md, between its markers."""
    path = ROOT / "docs" / "benchmarks.md"
    text = (
        path.read_text()
        if path.exists()
        else "# Benchmarks\n\nRun them with `make bench`. Figures below are "
        "from the last run on the machine named in each section; ratios compare runs made in the same session.\n"
    )
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _m: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
    return path
