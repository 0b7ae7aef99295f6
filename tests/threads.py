"""Real threads for the concurrency tests, and the proof that every one of them finished.

A thread still running after its join is a deadlock or a lost wake-up: the test fails instead of passing on
whatever the finished threads left behind.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connections

JOIN_TIMEOUT = 60.0  # seconds per thread; only reached when something hangs


def join_all(threads: list[threading.Thread], timeout: float = JOIN_TIMEOUT) -> None:
    """Join every thread and assert none is still running."""
    for thread in threads:
        thread.join(timeout)
    for thread in threads:
        assert not thread.is_alive(), f"thread {thread.name} still running after join({timeout})"


def start(*targets: Callable[[], Any]) -> list[threading.Thread]:
    """One started thread per target; finish them with `join_all`."""
    threads = [threading.Thread(target=target, name=f"test-{n}") for n, target in enumerate(targets)]
    for thread in threads:
        thread.start()
    return threads


def run_together(
    count: int, target: Callable[[int], Any], *, timeout: float = JOIN_TIMEOUT
) -> tuple[list[Any], list[BaseException]]:
    """`count` threads that wait for each other, then each call `target(index)` at the same moment.

    Returns what the calls returned and what they raised (both in the order they finished); each thread closes its
    own database connections. Asserts every thread finished.
    """
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout)
            value = target(index)
            with lock:
                results.append(value)
        except BaseException as exc:  # handed back to the test, which asserts on it
            with lock:
                errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,), name=f"together-{index}") for index in range(count)]
    for thread in threads:
        thread.start()
    join_all(threads, timeout)
    return results, errors


def serve_in_thread(server) -> threading.Thread:
    """`server.serve_forever()` in a daemon thread; stop it with `stop_serving`."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


def stop_serving(server, thread: threading.Thread) -> None:
    """Shut the server down, close its socket, and assert its thread finished."""
    server.shutdown()
    server.server_close()
    join_all([thread])
