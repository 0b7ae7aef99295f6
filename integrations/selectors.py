"""Reads of the integrations app."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Q

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
