"""The referrer portal: /p/<merchant>/<program>/ (and /pl/p/..., /ro/p/..., /ru/p/...).

Language: the URL prefix, else the switcher's choice (cookie), else the browser's Accept-Language, else the
program's default language. A participant signs in with a one-time emailed link or a link signed by the shop.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import wraps
from io import BytesIO
from urllib.parse import quote, urlencode

import segno
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.timezone import now as timezone_now
from django.utils.translation import get_supported_language_variant, gettext_lazy, ngettext
from django.utils.translation import gettext as _
from django.utils.translation.trans_real import parse_accept_lang_header
from django.views.decorators.http import require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from analytics.selectors.leaderboard import portal_leaderboard
from portal import services
from portal.forms import InviteForm, JoinForm
from programs.models import Participant, Program, ShareEvent
from programs.selectors import participant_export, program_texts
from programs.services import participant_erase
from referral_saas.api import is_id
from referral_saas.devices import request_device_id, with_device_cookie
from referral_saas.errors import ApplicationError
from referral_saas.tenancy.models import Merchant
from rewards import selectors as reward_selectors
from rewards.models import COUPON_KINDS, CatalogItem, Kind, LedgerEntry, Reward, RewardRule
from rewards.services import ledger_balance
from rewards.services.issuing import MILESTONE_WAITING
from rewards.services.portal import portal_redeem, portal_redeem_token
from tracking import selectors as tracking_selectors
from tracking.clicks import client_ip
from tracking.models import ReferralCode
from tracking.services import code_ensure, link_for

SESSION_PREFIX = "portal:"


class _ExternalRedirect(HttpResponseRedirect):
    allowed_schemes = ["http", "https", "mailto", "sms"]


class _ExternalSeeOther(_ExternalRedirect):
    status_code = 303  # after a POST: the browser opens the target with a GET


def _session_key(program: Program) -> str:
    return f"{SESSION_PREFIX}{program.pk}"


def _current_participant(request, program: Program) -> Participant | None:
    participant_id = request.session.get(_session_key(program))
    if participant_id is None:
        return None
    participant = Participant.objects.for_merchant(program.merchant).filter(pk=participant_id).first()
    if participant is None or participant.status == Participant.Status.ERASED:
        request.session.pop(_session_key(program), None)
        return None
    return participant


def _sign_in(request, program: Program, participant: Participant) -> None:
    request.session.cycle_key()  # a new session id at sign-in (no fixation)
    request.session[_session_key(program)] = participant.pk


def _whereabouts(request) -> dict:
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


def _page(request, template: str, program: Program, status: int = 200, **context):
    """Render a portal page with the program's texts in the page's language."""
    texts = program_texts(program=program, language=translation.get_language())
    return render(request, template, {"program": program, "texts": texts, **context}, status=status)


def _messages_of(error: ApplicationError) -> list[str]:
    """What to show a customer: the field messages (translated where raised), else the error's own message."""
    return [str(m) for errors in error.fields.values() for m in errors] or [error.message]


def _code_for(participant: Participant, program: Program) -> ReferralCode:
    return code_ensure(participant=participant, program=program)


SHARE_CHANNELS = [
    ("email", gettext_lazy("Email")),
    ("whatsapp", "WhatsApp"),
    ("facebook", "Facebook"),
    ("x", "X"),
    ("linkedin", "LinkedIn"),
    ("telegram", "Telegram"),
    ("vk", "VK"),
    ("sms", gettext_lazy("Text message")),
]


def _share_target(channel: str, program: Program, code: ReferralCode) -> str:
    link = link_for(code.code)
    offer = _offers(program, code).referee_offer or _("Have a look at %(shop)s") % {"shop": program.merchant.name}
    tagged = f"{link}?{urlencode({'utm_source': channel, 'utm_medium': 'referral'})}"
    text = f"{offer} {tagged}"
    subject = _("A gift from me at %(shop)s") % {"shop": program.merchant.name}
    targets = {
        "email": f"mailto:?subject={quote(subject)}&body={quote(text)}",
        "whatsapp": f"https://wa.me/?text={quote(text)}",
        "facebook": f"https://www.facebook.com/sharer/sharer.php?u={quote(tagged, safe='')}",
        "x": f"https://x.com/intent/post?text={quote(offer)}&url={quote(tagged, safe='')}",
        "linkedin": f"https://www.linkedin.com/sharing/share-offsite/?url={quote(tagged, safe='')}",
        "telegram": f"https://t.me/share/url?url={quote(tagged, safe='')}&text={quote(offer)}",
        "vk": f"https://vk.com/share.php?url={quote(tagged, safe='')}&title={quote(offer)}",
        "sms": f"sms:?&body={quote(text)}",
    }
    if channel not in targets:
        raise Http404
    return targets[channel]


# --- rewards, points, catalog and milestones on the dashboard ---------------------------------------------------


@dataclass
class RewardRow:
    reward: Reward
    what: str
    reason: str
    is_coupon: bool
    expired: bool
    waiting: bool = False  # a milestone reward waiting for the referrer to reach it again


@dataclass
class PointsRow:
    entry: LedgerEntry
    label: str
    points: int


@dataclass
class CatalogRow:
    item: CatalogItem
    missing: int  # points still needed (0: affordable)


@dataclass
class Milestones:
    done: int
    now: int  # where the bar stands: the friends counted, at most the goal
    goal: int  # the next milestone (or the last one, once all are reached)
    remaining: int
    percent: int
    next_what: str  # empty once every milestone is reached
    reached: list[tuple[int, str]]


def _reward_reason(reward: Reward) -> str:
    """Why a reward ended, for the customer, in their language: by its reason code (the stored note is the staff's,
    in English), with a general sentence for the rest."""
    code = Reward.ReasonCode
    if reward.status == Reward.Status.REJECTED:
        if reward.reason_code == code.FRAUD:
            return _("The purchase did not pass the shop's checks.")
        if reward.reason_code == code.CAP:
            return _("You reached the program's limit of rewards.")
        if reward.reason_code == code.BUDGET:
            return _("The program's reward budget has run out.")
        return _("It does not meet the program's terms.")
    if reward.status == Reward.Status.VOIDED:
        if reward.reason_code == code.REFUND:
            return _("The order was returned before the reward was used.")
        return _("The shop cancelled this reward.")
    if reward.status == Reward.Status.CLAWED_BACK:
        return _("The order was returned, so the reward was taken back.")
    return ""


def _points_label(entry: LedgerEntry) -> str:
    reward = entry.reward
    if entry.kind == LedgerEntry.Kind.EARNED:
        if reward is not None and reward.milestone:
            n = reward.milestone
            return ngettext("Milestone reached: %(n)d friend", "Milestone reached: %(n)d friends", n) % {"n": n}
        if reward is not None and reward.conversion_id:
            return _("A friend's purchase")
        if reward is not None and reward.referral_id:
            return _("A friend signed up")
        return _("Points earned")
    if entry.kind == LedgerEntry.Kind.SPENT:
        return _("Redeemed: %(item)s") % {"item": entry.note} if entry.note else _("Points redeemed")
    if entry.kind == LedgerEntry.Kind.CLAWBACK:
        return _("Taken back: the order was returned")
    return _("Correction by the shop")


def _program_gives_points(program: Program) -> bool:
    # rewards.selectors has no such read yet; this is the one query the dashboard needs.
    return (
        RewardRule.objects.for_merchant(program.merchant)
        .filter(program=program, kind=Kind.POINTS, active=True)
        .exists()
    )


def _milestones(program: Program, participant: Participant) -> Milestones | None:
    progress = reward_selectors.milestone_progress(program=program, participant=participant)
    if progress is None:
        return None

    def what(rule: RewardRule) -> str:
        return reward_selectors.rule_in_words(rule, program.currency)

    nxt = progress.next_rule
    goal = nxt.milestone if nxt else max(rule.milestone for rule in progress.reached)
    return Milestones(
        done=progress.successful,
        now=min(progress.successful, goal),
        goal=goal,
        remaining=progress.remaining,
        percent=min(progress.percent, 100),
        next_what=what(nxt) if nxt else "",
        reached=[(rule.milestone, what(rule)) for rule in progress.reached],
    )


def _rewards_context(request, program: Program, participant: Participant) -> dict:
    """What the dashboard shows about rewards: each reward, the points and their history, the catalog (with a
    one-time token for its forms), the milestones; and the reward just redeemed, once."""
    now = timezone_now()
    rewards = [
        RewardRow(
            reward=reward,
            what=reward_selectors.reward_in_words(reward.kind, reward.value, reward.currency, reward.description),
            reason=_reward_reason(reward),
            is_coupon=reward.kind in COUPON_KINDS,
            expired=bool(reward.expires_at and reward.expires_at < now),
            waiting=reward.status in (Reward.Status.PENDING, Reward.Status.APPROVED)
            and reward.reason == MILESTONE_WAITING,
        )
        for reward in reward_selectors.rewards_of(participant=participant, program=program)
    ]
    history = list(reward_selectors.points_history(participant=participant, program=program))
    items = list(reward_selectors.catalog_for(program=program))
    show_points = bool(items or history) or _program_gives_points(program)
    balance = int(ledger_balance(participant=participant, program=program)) if show_points else 0
    redeemed_id = request.session.pop(_redeemed_key(program), None)
    return {
        "rewards": rewards,
        "redeemed": next((row for row in rewards if row.reward.pk == redeemed_id), None),
        "show_points": show_points,
        "points_balance": balance,
        "points_history": [PointsRow(entry, _points_label(entry), int(entry.amount)) for entry in history],
        "catalog": [CatalogRow(item, max(item.points - balance, 0)) for item in items],
        "redeem_token": portal_redeem_token(program=program, participant=participant) if items else "",
        "milestones": _milestones(program, participant),
    }


def _redeemed_key(program: Program) -> str:
    return f"{SESSION_PREFIX}{program.pk}:redeemed"


def _redeem_error(error: ApplicationError, item_id: str, participant: Participant, program: Program) -> str:
    if error.code == "stale_form":
        return _("This page was open for a long time. Please try again.")
    if error.code == "not_in_catalog":
        return _("This item is not in the catalog any more.")
    if error.code == "rate_limited":
        return _("You redeemed many times in a short while. Please try again in a few minutes.")
    item = reward_selectors.catalog_for(program=program).filter(pk=item_id).first() if is_id(item_id) else None
    if item is None:
        return _("This item is not in the catalog any more.")
    if error.code == "insufficient_points":
        missing = max(item.points - int(ledger_balance(participant=participant, program=program)), 1)
        return ngettext(
            "You need %(n)d more point for %(item)s.", "You need %(n)d more points for %(item)s.", missing
        ) % {"n": missing, "item": item.name}
    if error.code == "out_of_stock":
        return _("%(item)s is out of stock right now. Your points were not spent; please try again later.") % {
            "item": item.name
        }
    if error.code == "participant_not_active":
        return _("Your account cannot redeem points. Please contact the shop.")
    if error.status_code == 404:
        return _("This item is not in the catalog any more.")
    return _("We could not redeem your points right now. Please try again later.")


# --- pages --------------------------------------------------------------------------------------------------------


@portal_view()
def home(request, program: Program, participant: Participant | None):
    if participant is None:
        return _page(request, "portal/landing.html", program, form=JoinForm())
    return _dashboard(request, program, participant, invite_form=InviteForm())


def _offers(program: Program, code: ReferralCode) -> tracking_selectors.CodeCheck:
    """The code as the shop's API shows it (tracking.selectors.code_check): the same offers, in the page's language."""
    check = tracking_selectors.code_check(
        merchant=program.merchant, livemode=code.livemode, code=code.code, language=translation.get_language()
    )
    if check is None:  # pragma: no cover - the code was just ensured; a concurrent erasure deletes it
        raise Http404
    return check


def _dashboard(request, program: Program, participant: Participant, *, invite_form: InviteForm, status: int = 200):
    code = _code_for(participant, program)
    offers = _offers(program, code)
    return _page(
        request,
        "portal/dashboard.html",
        program,
        status=status,
        participant=participant,
        code=code,
        own_offer=offers.referrer_offer,
        friend_offer=offers.referee_offer,
        link=link_for(code.code),
        stats=tracking_selectors.participant_stats(participant=participant, program=program),
        share_channels=SHARE_CHANNELS,
        invite_form=invite_form,
        **_rewards_context(request, program, participant),
    )


@require_POST
@portal_view()
def join(request, program: Program, participant: Participant | None):
    form = JoinForm(request.POST)
    if not program.is_live():
        messages.error(request, _("This program is not running at the moment."))
        return _page(request, "portal/landing.html", program, status=422, form=form)
    if not form.is_valid():
        return _page(request, "portal/landing.html", program, status=400, form=form)
    try:
        services.portal_link_send(
            program=program,
            email=form.cleaned_data["email"],
            name=form.cleaned_data["name"],
            consent=form.cleaned_data["marketing_consent"],
            language=translation.get_language(),
            ip=client_ip(request),
        )
    except ApplicationError as exc:
        for message in _messages_of(exc):
            form.add_error(None, message)
        return _page(request, "portal/landing.html", program, status=exc.status_code, form=form)
    return _page(
        request,
        "portal/check_email.html",
        program,
        email=form.cleaned_data["email"],
        minutes=services.LINK_MAX_AGE // 60,
    )


@require_http_methods(["GET", "POST"])
@portal_view()
def sign_in(request, program: Program, participant: Participant | None, token: str):
    """GET shows a button; the POST uses the one-time token. Mail scanners that open links cannot burn it, and
    nobody can be signed into someone else's account by a link they were sent."""
    if request.method == "GET":
        return _page(request, "portal/sign_in_confirm.html", program)
    try:
        participant = services.portal_link_verify(program=program, token=token, **_whereabouts(request))
    except ApplicationError as exc:
        return _page(request, "portal/link_problem.html", program, status=400, message=exc.message)
    _sign_in(request, program, participant)
    return redirect(request.path.split("sign-in/")[0])


@portal_view()
def sso(request, program: Program, participant: Participant | None):
    params = request.GET
    try:
        participant = services.portal_sso_verify(
            program=program,
            external_id=params.get("participant", ""),
            email=params.get("email", ""),
            ts=params.get("ts", ""),
            sig=params.get("sig", ""),
            **_whereabouts(request),
        )
    except ApplicationError as exc:
        return _page(request, "portal/link_problem.html", program, status=403, message=exc.message)
    _sign_in(request, program, participant)
    return redirect(request.path.split("sso/")[0])


@require_POST
@portal_view(require_participant=True)
def invite(request, program: Program, participant: Participant):
    """Sent: back to the dashboard with a message. Not sent: the dashboard again with what was typed and the
    errors next to the fields (nothing is lost)."""
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _dashboard(request, program, participant, invite_form=form, status=400)
    try:
        sent = services.invites_send(
            participant=participant, program=program, emails=form.email_list(), message=form.cleaned_data["message"]
        )
    except ApplicationError as exc:
        for field, errors in (exc.fields or {"": [exc.message]}).items():
            for message in errors:
                form.add_error(field if field in form.fields else "emails", str(message))
        return _dashboard(request, program, participant, invite_form=form, status=exc.status_code)
    messages.success(request, _("Invitations on their way: %(n)d.") % {"n": len(sent)})
    return redirect(request.path.rsplit("invite/", 1)[0])


@require_POST
@portal_view(require_participant=True)
def redeem(request, program: Program, participant: Participant):
    """Spend points on an item of this program's catalog (rewards.services.portal_redeem, which makes a double
    click redeem once). Every outcome goes back to the dashboard with a message (never an error page)."""
    back = HttpResponseRedirect(request.path.rsplit("redeem/", 1)[0] + "#catalog")
    item_id = request.POST.get("item", "")
    try:
        result = portal_redeem(
            program=program, participant=participant, token=request.POST.get("token", ""), item_id=item_id
        )
    except ApplicationError as exc:
        messages.error(request, _redeem_error(exc, item_id, participant, program))
        return back
    if result.reward_id is None:
        messages.info(request, _("Your reward is on its way. Reload the page in a moment."))
        return back
    request.session[_redeemed_key(program)] = result.reward_id
    if result.repeat:
        messages.info(request, _("You already redeemed this; here is your reward."))
        return back
    item = result.item
    messages.success(
        request,
        ngettext("Done! You spent %(n)d point on %(item)s.", "Done! You spent %(n)d points on %(item)s.", item.points)
        % {"n": item.points, "item": item.name},
    )
    return back


QR_FORMATS = ("png", "svg")


@require_http_methods(["GET", "HEAD", "POST"])
@portal_view(require_participant=True)
def share(request, program: Program, participant: Participant, channel: str):
    """A share button. A POST (the buttons are small forms; the copy button posts when it copies) counts the share,
    once per channel and day, and opens the network's share page (303). A GET (an old link, a crawler, a link
    prefetch, a reload) only opens it, and counts nothing."""
    if channel == ShareEvent.Channel.COPY:  # nothing to open
        response = HttpResponse(status=204)
    elif channel == ShareEvent.Channel.QR:  # the download buttons: the QR file itself is a plain GET
        fmt = request.POST.get("format", "")
        if fmt not in QR_FORMATS:
            raise Http404
        qr = reverse("portal_qr", kwargs={"merchant": program.merchant.slug, "program": program.slug, "fmt": fmt})
        response = HttpResponseRedirect(f"{qr}?download=1", status=303)
    else:
        target = _share_target(channel, program, _code_for(participant, program))
        response = _ExternalSeeOther(target) if request.method == "POST" else _ExternalRedirect(target)
    if request.method == "POST":
        services.share_record(participant=participant, program=program, channel=channel)
    return response


@portal_view(require_participant=True)
def qr_code(request, program: Program, participant: Participant, fmt: str):
    if fmt not in QR_FORMATS:
        raise Http404
    code = _code_for(participant, program)
    qr = segno.make(f"{link_for(code.code)}?utm_source=qr&utm_medium=referral", error="m")
    buffer = BytesIO()
    if fmt == "png":
        qr.save(buffer, kind="png", scale=10, border=2)
        content_type = "image/png"
    else:
        qr.save(buffer, kind="svg", scale=10, border=2, title=code.code)
        content_type = "image/svg+xml"
    response = HttpResponse(buffer.getvalue(), content_type=content_type)
    if request.GET.get("download"):  # counted by the download button's POST (share/qr/), never by a GET
        response["Content-Disposition"] = f'attachment; filename="referral-{code.code}.{fmt}"'
    return response


@portal_view(require_participant=True)
def export_data(request, program: Program, participant: Participant):
    response = JsonResponse(participant_export(participant=participant), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = 'attachment; filename="my-referral-data.json"'
    return response


@require_http_methods(["GET", "POST"])
@portal_view(require_participant=True)
def delete_account(request, program: Program, participant: Participant):
    if request.method == "POST":
        participant_erase(participant=participant)
        request.session.flush()
        return _page(request, "portal/deleted.html", program)
    return _page(request, "portal/delete_confirm.html", program, participant=participant)


@portal_view(require_participant=True)
def leaderboard(request, program: Program, participant: Participant):
    """Top referrers by first name and initial, the participant's rank and their milestone progress (programs that
    opt in: /<language>/p/<shop>/<program>/leaderboard/)."""
    if not program.leaderboard_enabled:
        raise Http404
    board = portal_leaderboard(program=program, participant=participant)
    texts = program_texts(program=program, language=translation.get_language())
    context = {"program": program, "texts": texts, "participant": participant, "board": board}
    return render(request, "portal/leaderboard.html", context)


@require_POST
@portal_view()
def sign_out(request, program: Program, participant: Participant | None):
    request.session.pop(_session_key(program), None)
    return redirect(request.path.rsplit("sign-out/", 1)[0])
