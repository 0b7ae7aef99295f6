"""URL path converters."""

from __future__ import annotations


class TextConverter:
    """A path segment with no control characters: ids, codes and tokens never contain one (a %00 would reach
    PostgreSQL, which refuses NUL in text, as a 500). Such a URL is simply not found."""

    regex = r"[^/\x00-\x1f\x7f]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value
