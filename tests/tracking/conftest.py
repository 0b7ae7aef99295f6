from __future__ import annotations

import pytest


@pytest.fixture
def click_stream(click_stream):
    """The click buffer and its dead letters, emptied before and after the test."""
    from tracking.clicks import DEAD_STREAM

    click_stream.delete(DEAD_STREAM)
    yield click_stream
    click_stream.delete(DEAD_STREAM)
