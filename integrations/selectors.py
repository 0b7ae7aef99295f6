"""Reads of the integrations app."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q

from integrations.models import Connection
from programs.identity import normalize_email
from programs.models import Participant
from rewards.models import Reward, Side
from tracking.models import Conversion
from tracking.selectors import code_lookup


def referral_code_for_discounts(*, merchant, livemode: bool, discount_codes: list[str]) -> str | None:
    """The referral code a discount code at checkout stands for: a referral code typed as a discount code, or the
    coupon a friend got as their welcome reward (which names the referral that brought them)."""
    for typed in discount_codes:
        typed = (typed or "").strip()
        if not typed:
            continue
        if code_lookup(merchant=merchant, livemode=livemode, code=typed) is not None:
            return typed
        reward = (
            Reward.objects.for_merchant(merchant)
            .filter(livemode=livemode, coupon_code__iexact=typed, side=Side.REFEREE, referral__isnull=False)
            .select_related("referral__code")
            .first()
        )
        if reward is not None and reward.referral.code_id:
            return reward.referral.code.code
    return None


def order_remaining(*, merchant, livemode: bool, order_id: str) -> Decimal | None:
    """What of an order has not been refunded yet, or None when we do not have the order."""
    row = (
        Conversion.objects.for_merchant(merchant)
        .filter(livemode=livemode, order_id=order_id)
        .values_list("amount", "refunded_amount")
        .first()
    )
    return None if row is None else row[0] - row[1]


def participants_matching(*, merchant, livemode: bool, external_id: str | None, email: str | None):
    """The participants a platform's customer is: by the shop's customer id or the normalised email."""
    match = Q(pk__in=[])
    if external_id:
        match |= Q(external_id=external_id)
    if normalize_email(email):
        match |= Q(email_normalized=normalize_email(email))
    return Participant.objects.for_merchant(merchant).filter(match, livemode=livemode).select_related("merchant")


# --- the install page's checklist ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetupStep:
    key: str
    label: str
    done: bool
    hint: str = ""


def setup_checklist(*, merchant, program) -> list[SetupStep]:
    """The install page's steps from the shop's first API call to a paid reward, each ticked by what really
    happened (in live or test mode): a step is done when its first event exists, never by a box the merchant ticks."""
    from django.utils.translation import gettext as _

    from referral_saas.tenancy.models import ApiKey
    from referral_saas.webhooks.models import WebhookEndpoint
    from tracking.models import Click, Referral

    keys = ApiKey.objects.for_merchant(merchant).filter(revoked_at__isnull=True)
    connected = Connection.objects.for_merchant(merchant).filter(status=Connection.Status.ACTIVE).exists()
    orders = Conversion.objects.for_merchant(merchant)
    return [
        SetupStep("connect", _("Your shop is connected, or has an API key"), connected or keys.exists(),
                  _("Connect Shopify, WooCommerce or Stripe below, or create an API key.")),
        SetupStep("api", _("Your shop called the API"), connected or keys.filter(last_used_at__isnull=False).exists(),
                  _("Send a participant or an order with the key (examples below).")),
        SetupStep("joined", _("A customer joined the program"),
                  Participant.objects.for_merchant(merchant).filter(codes__program=program).exists(),
                  _("Join in the portal, or POST /api/v1/participants.")),
        SetupStep("clicked", _("A referral link was followed"),
                  Click.objects.for_merchant(merchant).filter(program=program).exists(),
                  _("Open a participant's link: the snippet keeps rs_click on your shop's pages.")),
        SetupStep("order", _("Your shop reported an order"), orders.exists(),
                  _("POST /api/v1/conversions for every order, referred or not.")),
        SetupStep("attributed", _("An order came with its referral (click_id or code)"),
                  Referral.objects.for_merchant(merchant).filter(program=program, conversions__isnull=False).exists(),
                  _("Send the snippet's click id as click_id (or the code as code) with the order.")),
        SetupStep("rewarded", _("A reward was decided"),
                  Reward.objects.for_merchant(merchant).filter(program=program).exists(),
                  _("Add reward rules to the program; a worker decides each attributed order.")),
        SetupStep("webhooks", _("Your shop hears about rewards (webhooks or a connected shop)"),
                  connected or WebhookEndpoint.objects.for_merchant(merchant).exists(),
                  _("Add a webhook endpoint, or connect the shop so coupons are created there.")),
    ]  # fmt: skip
