"""`GET /r/<code>`: the referral link. Answers from caches, buffers the click in Redis, redirects (302). A browser
without a device cookie gets one, and the click carries its id (a referrer clicking their own link is then seen).

Every working link is answered by `tracking.middleware.ReferralLinkMiddleware` through `link_redirect`, before the
session, locale, CSRF and auth middleware (a redirect needs none of them). What it declines (an unknown, disabled or
blocked code: the friendly page, in the visitor's language) reaches `referral_redirect` through the whole stack.
"""

from __future__ import annotations

from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_safe

from referral_saas.devices import with_device_cookie
from tracking.bots import is_bot
from tracking.clicks import RecordedClick, click_record, landing_location, utm_params
from tracking.selectors import code_info, program_info


class LinkRedirect(HttpResponseRedirect):
    """The link's 302. Its click's Redis answer is read when the server closes it, after sending it."""

    click: RecordedClick | None = None

    def close(self):
        try:
            if self.click is not None:
                self.click.confirm()
        finally:
            super().close()


def _redirect(location: str, click: RecordedClick | None = None) -> LinkRedirect:
    response = LinkRedirect(location)
    response.click = click
    response["Cache-Control"] = "no-store"  # every visit is a click; no browser or proxy may replay the redirect
    response["X-Robots-Tag"] = "noindex"
    return response


@with_device_cookie
def link_redirect(request, code: str) -> LinkRedirect | None:
    """The redirect a working code answers (its click recorded), or None when the visitor must see the friendly page.

    A paused or ended program sends to its landing page without attribution. Otherwise the landing URL (or the
    program's welcome page, which passes them on to it) gets `ref`,
    the click id `rs_click` (when the click was recorded; click_record says why it may not be) and the visit's utm_*
    parameters. A bot or link preview is redirected alike; its click is marked as a bot's and never counted.
    """
    info = code_info(code)
    program = program_info(info.program_id) if info is not None else None
    if info is None or program is None or not info.usable:
        return None
    if not program.live:
        return _redirect(program.landing_url)
    utm = utm_params(request)  # cleaned of control characters, as stored with the click
    params = {"ref": info.code}
    click = click_record(info=info, request=request, is_bot=is_bot(request.headers.get("User-Agent")), utm=utm)
    if click is not None:
        params["rs_click"] = click.click_id
    params.update(utm)
    return _redirect(landing_location(program.welcome_path or program.landing_url, params), click)


@require_safe
def referral_redirect(request, code: str):
    response = link_redirect(request, code)
    if response is None:
        return render(request, "tracking/unknown_code.html", {"code": code[:40]}, status=404)
    return response


def bare_redirect(request):
    """Benchmark baseline (BENCH_ENDPOINTS only): a view that does nothing but answer 302."""
    return HttpResponseRedirect("https://shop.example/landing")
