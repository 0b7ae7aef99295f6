"""Real processes for tests: a Celery worker on the test database."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url_for_subprocess() -> str:
    """DATABASE_URL of the database pytest-django created, so a subprocess sees committed test data."""
    from urllib.parse import quote

    s = connection.settings_dict
    host = quote(s["HOST"] or "", safe="")
    port = f":{s['PORT']}" if s.get("PORT") else ""
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{host}{port}/{s['NAME']}"


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
    from django.conf import settings

    env.update(
        DEBUG="true",
        DATABASE_URL=database_url_for_subprocess(),
        REDIS_URL=settings.REDIS_URL,
        REDIS_NAMESPACE=settings.REDIS_NAMESPACE,  # the run's own queues, click stream and cache
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def celery_worker(queues: list[str], concurrency: int = 1, pool: str = "prefork") -> Iterator[subprocess.Popen]:
    """Start `celery worker` on the given queues; wait until it is ready; stop it afterwards."""
    name = f"test-{uuid.uuid4().hex[:8]}@%h"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "referral_saas",
            "worker",
            "--queues",
            ",".join(queues),
            "--concurrency",
            str(concurrency),
            "--pool",
            pool,
            "--hostname",
            name,
            "--loglevel",
            "INFO",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if " ready." in line:
                break
        else:
            raise RuntimeError("celery worker exited before it was ready:\n" + "".join(lines))
        # Keep draining its output so a full pipe never blocks the worker; the lines help when a test fails.
        threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
        proc.output_lines = lines
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
