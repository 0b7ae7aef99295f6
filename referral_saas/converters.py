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


class KeyConverter(TextConverter):
    """A shop's own key that may contain slashes (invoice numbers like "FV/2026/11/1001"): the rest of the path, no
    control characters. Routes with a suffix after it ("<key:order_id>/refunds") are listed before the bare one."""

    regex = r"[^\x00-\x1f\x7f]+"
