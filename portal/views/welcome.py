"""The friend's welcome page: where a referral link lands first when the program says so (Program.friend_welcome_page).

"Anna K. gave you a gift — a 15% off coupon on signing up": the offer as the rules pay it, in the friend's language.
A reward at sign-up: the friend leaves their email, a worker decides it, and the page reveals its coupon (polling a
small JSON view). A discount on the first order: given at the click, as the referral code to type at checkout (the
shop applies it through the code check). Then on to the shop's landing page with the referral (ref, rs_click) the
shop's snippet keeps.
"""

from __future__ import annotations

from django.http import HttpResponseRedirect, JsonResponse
from django.utils import formats, timezone, translation
from django.views.decorators.http import require_http_methods, require_safe

from portal import services
from portal.forms import WelcomeForm
from portal.selectors import welcome_gift
from portal.views.base import messages_of, page, portal_view
from programs.models import Participant, Program
from referral_saas.errors import ApplicationError
from rewards.models import COUPON_KINDS, RewardRule, Side
from rewards.offers import offers_for
from rewards.selectors import friend_rules, rules_for
from tracking.clicks import UTM_FIELDS, client_ip, landing_location
from tracking.models import Referral


def _session_key(program: Program) -> str:
    return f"portal-welcome:{program.pk}"


def _landing(program: Program, query, code: str | None) -> str:
    """The shop's landing page with the referral the link carried, as /r/ would have sent the friend there."""
    params = {"ref": code} if code else {}
    if code and query.get("rs_click"):
        params["rs_click"] = query["rs_click"][:64]
    params.update({field: query[field][:100] for field in UTM_FIELDS if query.get(field)})
    return landing_location(program.landing_url, params)


def _own_referral(request, program: Program) -> Referral | None:
    """The sign-up this browser made on this program's welcome page (kept in its session), if any."""
    referral_id = request.session.get(_session_key(program))
    if not isinstance(referral_id, int):
        return None
    return Referral.objects.for_merchant(program.merchant).filter(pk=referral_id, program=program).first()


def _signup_pays_friend(program: Program, variant_id: int | None) -> bool:
    rules = rules_for(program=program, variant_id=variant_id, triggers=(RewardRule.Trigger.SIGNUP,), at=timezone.now())
    return any(rule.side == Side.REFEREE for rule in rules)


def _discount_at_checkout(program: Program, variant_id: int | None) -> bool:
    """The friend's reward is a discount on their first order, unheld: what the shop's checkout applies when the
    referral code is typed there (the code check's `referee_rewards`). The welcome page then gives it at the click:
    the code to type, no email needed (the shop applies it to a first order only, and the rules decide at the order)."""
    return any(
        rule.side == Side.REFEREE and rule.kind in COUPON_KINDS and not rule.hold_days
        for rule in friend_rules(program=program, variant_id=variant_id)
        if rule.trigger == RewardRule.Trigger.FIRST_PURCHASE
    )


@require_http_methods(["GET", "POST"])
@portal_view()
def welcome(request, program: Program, participant: Participant | None):
    query = request.POST if request.method == "POST" else request.GET
    code = services.welcome_code(program=program, code=query.get("ref", "")[:64]) if query.get("ref") else None
    landing = _landing(program, query, code.code if code else None)
    if code is None or not program.is_live() or not program.friend_welcome_page:
        return HttpResponseRedirect(landing)  # nothing to welcome the friend with (or not asked for): to the shop
    form = WelcomeForm(request.POST or None, initial={"ref": code.code, "rs_click": query.get("rs_click", "")[:64]})
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            referral = services.welcome_signup(
                program=program, code=code, click_id=form.cleaned_data["rs_click"], email=form.cleaned_data["email"],
                ip=client_ip(request),
            )  # fmt: skip
        except ApplicationError as exc:
            for message in messages_of(exc):
                form.add_error(None, message)
            status = exc.status_code
        else:
            request.session[_session_key(program)] = referral.pk
            return HttpResponseRedirect(request.get_full_path())  # the form posts to the page's own address
    elif request.method == "POST":
        status = 400
    referral = _own_referral(request, program)
    return page(
        request,
        "portal/welcome.html",
        program,
        status=status,
        referrer_name=code.participant.first_name_initial,
        friend_offer=offers_for(program=program, variant=code.variant, language=translation.get_language())[
            "referee_offer"
        ],
        signup_gift=_signup_pays_friend(program, code.variant_id),
        checkout_code=code.code if _discount_at_checkout(program, code.variant_id) else "",
        form=form,
        gift=welcome_gift(referral=referral) if referral is not None else None,
        landing=landing,
    )


@require_safe
@portal_view()
def welcome_gift_status(request, program: Program, participant: Participant | None):
    """The welcome page's gift, for its script to reveal without reloading: {"state", "what", "coupon_code",
    "expires"}; 404 for a browser that did not sign up here."""
    referral = _own_referral(request, program)
    if referral is None:
        return JsonResponse({"error": {"code": "not_found", "message": "No sign-up here."}}, status=404)
    gift = welcome_gift(referral=referral)
    expires = formats.date_format(gift.expires_at, "DATE_FORMAT") if gift.expires_at else ""
    return JsonResponse(
        {"state": gift.state, "what": gift.what, "coupon_code": gift.coupon_code, "expires": expires},
        headers={"Cache-Control": "no-store"},
    )
