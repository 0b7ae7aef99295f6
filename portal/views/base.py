"""What every portal page shares: the program from the URL (404 for drafts and strangers), the signed-in
participant in the session, the language redirect of shared links, and rendering with the program's texts.

Language: the URL prefix, else the switcher's choice (cookie), else the browser's Accept-Language, else the
program's default language. A participant signs in with a one-time emailed link or a link signed by the shop.
"""

from __future__ import annotations

import zoneinfo
from functools import wraps

from django.conf import settings
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils import formats, timezone, translation
from django.utils.translation import get_supported_language_variant
from django.utils.translation import gettext as _
from django.utils.translation.trans_real import parse_accept_lang_header
from django.views.decorators.vary import vary_on_headers

from portal.forms import JoinForm
from programs.models import Participant, Program
from programs.selectors import program_texts
from referral_saas.devices import request_device_id, with_device_cookie
from referral_saas.errors import ApplicationError
from referral_saas.tenancy.models import Merchant
from rewards.offers import offers_for
from tracking.clicks import client_ip
from tracking.models import ReferralCode
from tracking.services import code_ensure

SESSION_PREFIX = "portal:"


def session_key(program: Program) -> str:
    return f"{SESSION_PREFIX}{program.pk}"


def _current_participant(request, program: Program) -> Participant | None:
    participant_id = request.session.get(session_key(program))
    if participant_id is None:
        return None
    participant = Participant.objects.for_merchant(program.merchant).filter(pk=participant_id).first()
    if participant is None or participant.status == Participant.Status.ERASED:
        request.session.pop(session_key(program), None)
        return None
    return participant


def start_session(request, program: Program, participant: Participant) -> None:
    request.session.cycle_key()  # a new session id at sign-in (no fixation)
    request.session[session_key(program)] = participant.pk


def whereabouts(request) -> dict:
    """Where the visitor joins from, for participant_join (through the sign-in services)."""
    return {
        "ip": client_ip(request),
        "user_agent": request.headers.get("User-Agent", ""),
        "device_id": request_device_id(request),
    }


def _program_or_404(merchant: str, program: str) -> Program:
    shop = Merchant.objects.filter(slug=merchant, status=Merchant.Status.ACTIVE).first()
    found = Program.objects.for_merchant(shop).select_related("merchant").filter(slug=program).first() if shop else None
    if found is None or found.status == Program.Status.DRAFT:
        raise Http404
    return found


def _visitor_language(request, program: Program) -> str:
    """The switcher's choice (cookie), else the first supported Accept-Language, else the program's language."""
    candidates = [request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")]
    candidates += [lang for lang, _q in parse_accept_lang_header(request.headers.get("Accept-Language", ""))]
    for candidate in candidates:
        if candidate and candidate != "*":
            try:
                return get_supported_language_variant(candidate)
            except LookupError:
                continue
    return program.default_language


@vary_on_headers("Accept-Language", "Cookie")
@with_device_cookie
def language_redirect(request, merchant: str, program: str, rest: str = ""):
    """/p/<shop>/<program>/... -> /<language>/p/<shop>/<program>/... (the link shops and emails share)."""
    found = _program_or_404(merchant, program)
    target = f"/{_visitor_language(request, found)}/p/{merchant}/{program}/{rest}"
    if request.META.get("QUERY_STRING"):
        target += "?" + request.META["QUERY_STRING"]
    return HttpResponseRedirect(target)


def portal_view(require_participant: bool = False):
    """Resolve merchant + program from the URL (404 for drafts and strangers) and optionally require a signed-in
    participant. The language is the URL's prefix. A browser without a device cookie gets one."""

    def decorator(view):
        @wraps(view)
        @with_device_cookie
        def wrapper(request, merchant: str, program: str, **kwargs):
            found = _program_or_404(merchant, program)
            participant = _current_participant(request, found)
            if require_participant and participant is None:
                return redirect("portal_home", merchant=merchant, program=program)
            return view(request, program=found, participant=participant, **kwargs)

        return wrapper

    return decorator


def closed_notice(program: Program) -> str | None:
    """Why a program that is not running today takes no new referrals, for the banner on every portal page (None
    while it runs). A paused or ended program's portal stays open to its participants, but stops inviting."""
    if program.is_live():
        return None
    if program.status == Program.Status.PAUSED:
        return _("This program is paused: new invitations and shares are closed for now.")
    today = timezone.now().astimezone(zoneinfo.ZoneInfo(program.merchant.timezone)).date()
    if program.status == Program.Status.ACTIVE and program.starts_on > today:
        return _("This program has not started yet: it starts on %(date)s.") % {
            "date": formats.date_format(program.starts_on, "DATE_FORMAT")
        }
    return _("This program has ended: new invitations and shares are closed. Thank you for taking part!")


def join_form(program: Program, data=None) -> JoinForm:
    """The join form, with the "I accept the terms" box only when the program has terms in the page's language."""
    texts = program_texts(program=program, language=translation.get_language())
    return JoinForm(data, with_terms=bool((texts.get("terms") or "").strip()))


def page(request, template: str, program: Program, status: int = 200, **context):
    """Render a portal page with the program's texts in the page's language, and the banner of a program that is not
    running (closed_notice)."""
    language = translation.get_language()
    texts = {
        **program_texts(program=program, language=language),
        **offers_for(program=program, variant=None, language=language),
    }
    context = {"program": program, "texts": texts, "closed": closed_notice(program), **context}
    return render(request, template, context, status=status)


def messages_of(error: ApplicationError) -> list[str]:
    """What to show a customer: the field messages (translated where raised), else the error's own message."""
    return [str(m) for errors in error.fields.values() for m in errors] or [error.message]


def code_for(participant: Participant, program: Program) -> ReferralCode:
    return code_ensure(participant=participant, program=program)


def code_offers(program: Program, code: ReferralCode) -> dict[str, str]:
    """What the code's referrer and their friends get (rewards.offers.offers_for its A/B variant), in the page's
    language: what the shop's code check shows too."""
    return offers_for(program=program, variant=code.variant, language=translation.get_language())
