"""`GET /r/<code>`: the referral link. Answers from caches, buffers the click in Redis, redirects (302). A browser
without a device cookie gets one, and the click carries its id (a referrer clicking their own link is then seen)."""

from __future__ import annotations

import logging

from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_safe
from redis.exceptions import RedisError

from referral_saas.devices import with_device_cookie
from tracking.bots import is_bot
from tracking.clicks import click_record, landing_location, utm_params
from tracking.selectors import code_info, program_info

logger = logging.getLogger(__name__)


def _redirect(location: str) -> HttpResponseRedirect:
    response = HttpResponseRedirect(location)
    response["Cache-Control"] = "no-store"  # every visit is a click; no browser or proxy may replay the redirect
    response["X-Robots-Tag"] = "noindex"
    return response


@require_safe
@with_device_cookie
def referral_redirect(request, code: str):
    info = code_info(code)
    program = program_info(info.program_id) if info is not None else None
    if info is None or program is None or not info.usable:
        return render(request, "tracking/unknown_code.html", {"code": code[:40]}, status=404)
    if not program.live:
        return _redirect(program.landing_url)  # the program is paused or over: no attribution
    params = {"ref": info.code}
    try:
        params["rs_click"] = click_record(info=info, request=request, is_bot=is_bot(request.headers.get("User-Agent")))
    except RedisError:
        # The code still attributes the order; only this click goes uncounted.
        logger.exception("click buffer unavailable", extra={"code": info.code})
    params.update(utm_params(request))  # cleaned of control characters, as stored with the click
    return _redirect(landing_location(program.landing_url, params))


def bare_redirect(request):
    """Benchmark baseline (BENCH_ENDPOINTS only): a view that does nothing but answer 302."""
    return HttpResponseRedirect("https://shop.example/landing")
