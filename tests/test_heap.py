"""The app's long-lived objects are out of the garbage collector's sight in each server and worker process: a full
collection walked all of them (~175,000 objects, 50-120 ms) once every few hundred requests (docs/benchmarks.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _frozen_after(code: str) -> int:
    """How many objects are frozen (gc.freeze) after `code` runs in a fresh interpreter."""
    script = f"import gc\n{code}\nprint(gc.get_freeze_count())"
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip().splitlines()[-1])


def test_a_gunicorn_worker_freezes_the_app_it_loaded_with_its_views():
    frozen = _frozen_after(
        "import referral_saas.wsgi\n"
        "import sys\n"
        "assert 'rewards.api.conversions' in sys.modules  # the views, imported before the freeze"
    )
    assert frozen > 50_000


def test_a_celery_pool_process_freezes_the_app_it_was_forked_with():
    assert _frozen_after("import django; django.setup()\nfrom referral_saas.celery import app") == 0
    frozen = _frozen_after(
        "import django; django.setup()\n"
        "from celery import signals\n"
        "from referral_saas.celery import app\n"
        "signals.worker_process_init.send(sender=None)"
    )
    assert frozen > 20_000
