"""Coupons on the platform: a coupon reward of a merchant with a connected shop is created there before it is
handed over, so the code works at the shop's checkout. Registered with rewards' issuing at start-up
(IntegrationsConfig.ready): rewards calls it inside reward_issue, and a failure leaves the reward approved, flagged,
with the error as its reason, tried again later (rewards.services.issuing.CouponPublishError)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from integrations.http import PlatformError
from integrations.models import Connection
from integrations.providers import provider_for
from integrations.providers.base import Coupon
from integrations.services.connections import connection_record_error
from rewards.models import Kind, Reward
from rewards.services.issuing import CouponPublishError

COUPON_KINDS = {Kind.PERCENT_COUPON: "percent", Kind.AMOUNT_COUPON: "amount"}


def coupon_connection(*, merchant_id: int, livemode: bool) -> Connection | None:
    """The connected shop that takes this merchant's coupons (of this mode): the first connected, if several."""
    candidates = Connection.objects.for_merchant(merchant_id).filter(status=Connection.Status.ACTIVE, livemode=livemode)
    for connection in candidates.order_by("created_at", "pk"):
        if connection.syncs("coupons") and connection.credentials:
            return connection
    return None


def coupon_publish(reward: Reward, code: str) -> str | None:
    """Create `code` on the merchant's shop platform for `reward`. Returns the code as created, None when the
    merchant has no connected shop that takes coupons; raises CouponPublishError when the platform failed."""
    if reward.kind not in COUPON_KINDS:
        return None
    connection = coupon_connection(merchant_id=reward.merchant_id, livemode=reward.livemode)
    if connection is None:
        return None
    source = reward.rule or reward.catalog_item
    valid_days = getattr(source, "coupon_valid_days", None)
    coupon = Coupon(
        code=code,
        kind=COUPON_KINDS[reward.kind],
        value=reward.value,
        currency=reward.currency,
        customer_email=reward.participant.email if reward.participant_id else None,
        ends_at=timezone.now() + timedelta(days=valid_days) if valid_days else None,
        title=f"Referral reward #{reward.pk}",  # how a retry recognises a code it created already
    )
    try:
        return provider_for(connection.provider).create_coupon(connection=connection, coupon=coupon)
    except (PlatformError, NotImplementedError) as exc:
        connection_record_error(connection=connection, error=f"coupon {code}: {exc}")
        raise CouponPublishError(f"{connection}: {exc}") from exc
