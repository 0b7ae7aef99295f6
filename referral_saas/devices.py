"""The device cookie: a random first-party id the platform gives a browser on the portal and the referral link.

A friend's click or order that carries the id the referrer signed in to the portal with is the fraud check
`shared_device` (a referrer clicking their own link in their own browser). The id is opaque and random: it says
which browser, never who.
"""

from __future__ import annotations

import re
import secrets
from functools import wraps

from django.conf import settings

DEVICE_COOKIE = "rs_device"
DEVICE_COOKIE_MAX_AGE = 2 * 365 * 24 * 60 * 60  # two years, in seconds
# Ours (and referral.js's, when the shop shares the platform's domain) are 22 URL-safe characters; a value that could
# not be one (tampered, cut short, too long to store) is replaced.
_WELL_FORMED = re.compile(r"^[A-Za-z0-9_-]{8,128}$")


def request_device_id(request) -> str:
    """The browser's device id in effect: the one `with_device_cookie` put on the request (also on the visit that is
    being given the cookie), else a well-formed cookie, else ""."""
    given = getattr(request, "device_id", None)
    if given is not None:
        return given
    cookie = request.COOKIES.get(DEVICE_COOKIE, "")
    return cookie if _WELL_FORMED.match(cookie) else ""


def with_device_cookie(view):
    """Give the browser a device cookie when it has none (HttpOnly, SameSite=Lax, Secure over https or where session
    cookies are Secure), and set `request.device_id` before the view runs. A view that answers None (a middleware's
    fast path declining the request) is passed through: the request then goes on to its ordinary view."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        current = request.COOKIES.get(DEVICE_COOKIE, "")
        fresh = not _WELL_FORMED.match(current)
        request.device_id = secrets.token_urlsafe(16) if fresh else current
        response = view(request, *args, **kwargs)
        if fresh and response is not None:
            response.set_cookie(
                DEVICE_COOKIE,
                request.device_id,
                max_age=DEVICE_COOKIE_MAX_AGE,
                secure=request.is_secure() or settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response

    return wrapper
