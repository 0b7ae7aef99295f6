"""The referral link's fast path: `GET /r/<code>` skips the middleware a redirect does not use.

A click is the busiest request we serve and answers a 302 with a cookie at most. Sessions, the visitor's language,
CSRF, authentication, messages and the staff's merchant are of no use to it, and running them cost about as much as
the redirect itself. Placed after RequestIdMiddleware (the request id and the access log), SecurityMiddleware (HSTS,
nosniff, Referrer-Policy, COOP; the https redirect) and XFrameOptionsMiddleware, so every answer keeps those.

Only a code that redirects is answered here; any other request to /r/ (an unknown or disabled code, a POST) goes on
through the whole stack to `tracking.views.referral_redirect`, which answers it as before.
"""

from __future__ import annotations

import re

from referral_saas.converters import TextConverter
from tracking.views import link_redirect

# The URLconf's "r/<text:code>", matched against the same path_info the resolver sees.
_LINK = re.compile(rf"/r/({TextConverter.regex})")
_SAFE_METHODS = frozenset({"GET", "HEAD"})


class ReferralLinkMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if path.startswith("/r/") and request.method in _SAFE_METHODS:
            match = _LINK.fullmatch(path)
            if match is not None:
                response = link_redirect(request, match[1])
                if response is not None:
                    return response
        return self.get_response(request)
