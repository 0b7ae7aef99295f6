"""Comparing a secret the caller sent with the one we expect."""

from __future__ import annotations

import hmac


def same_secret(expected: str | bytes, given: object) -> bool:
    """Constant-time equality for a signature, token or key hash that arrives from outside.

    `hmac.compare_digest` raises TypeError for a str with a non-ASCII character (`?sig=é`) and for mismatched or
    non-string types: used bare on caller input that is a 500. Here both sides are compared as UTF-8 bytes (lone
    surrogates from JSON included), so anything malformed is simply not equal: the same answer as a wrong value.
    """
    if isinstance(given, str):
        given = given.encode("utf-8", "surrogatepass")
    if isinstance(expected, str):
        expected = expected.encode("utf-8", "surrogatepass")
    if not isinstance(given, bytes) or not isinstance(expected, bytes):
        return False
    return hmac.compare_digest(expected, given)
