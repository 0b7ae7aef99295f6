"""Entries of the click stream as the redirect writes them, for tests that feed the ingest directly."""

from __future__ import annotations

import time
import uuid


def stream_entry(code, **extra) -> dict:
    """A click of `code` as buffered by `GET /r/<code>` (one field per value, the older layout the ingest reads)."""
    return {
        "click_id": uuid.uuid4().hex,
        "ts": f"{time.time():.6f}",
        "merchant_id": code.merchant_id,
        "program_id": code.program_id,
        "code_id": code.pk,
        "participant_id": code.participant_id,
        "livemode": 1,
        "ip_hash": "abc",
        "ua": "Mozilla/5.0",
        "referer": "",
        "bot": 0,
        **extra,
    }
