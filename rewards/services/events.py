"""What the deciding services tell the shop: the webhook events of a decided order or sign-up."""

from __future__ import annotations

from fraud.selectors import assessment_summary
from referral_saas.webhooks.services import webhook_emit
from rewards.models import Reward, Work
from rewards.serializers import ConversionOutput
from tracking.models import Conversion, Referral
from tracking.serializers import ReferralOutput


def event_emit(merchant, livemode: bool, event_type: str, data) -> None:
    """A webhook event of a decision (`data` may be a function: built only if an endpoint wants the event)."""
    webhook_emit(merchant=merchant, livemode=livemode, event_type=event_type, data=data)


def referral_data(referral: Referral) -> dict:
    """The referral as GET /api/v1/referrals shows it."""
    return dict(ReferralOutput(referral).data)


def flagged_data(assessment, referral: Referral, conversion: Conversion | None) -> dict:
    """The `data` of fraud.flagged."""
    return {
        "referral_id": referral.pk,
        "order_id": conversion.order_id if conversion else None,
        "program": referral.program.slug,
        "fraud": assessment_summary(assessment),
    }


def conversion_events_emit(
    conversion: Conversion, assessment, *, rewards: list[Reward], reinstated: bool = False
) -> None:
    """The first look at an order tells the shop of the referral (if the order opened it), the attribution and a
    fraud flag; a reinstated order only of its attribution."""

    merchant, livemode, referral = conversion.merchant, conversion.livemode, conversion.referral
    first_work = not reinstated and (
        not Work.objects.for_merchant(merchant).filter(referral=referral).exclude(conversion=conversion).exists()
    )
    if referral.signed_up_at is None and first_work:  # the order opened the referral: the shop hears of both
        event_emit(merchant, livemode, "referral.created", lambda: referral_data(referral))
    context = {
        "fraud": {conversion.pk: assessment_summary(assessment)},
        "rewards": {conversion.pk: [r for r in rewards if r.conversion_id == conversion.pk]},
    }
    if conversion.status == Conversion.Status.ATTRIBUTED:  # one rejected is told by fraud.flagged, not as attributed
        event_emit(
            merchant,
            livemode,
            "conversion.attributed",
            lambda: dict(ConversionOutput(conversion, context=context).data),
        )
    if assessment.decision != "approve":
        event_emit(merchant, livemode, "fraud.flagged", lambda: flagged_data(assessment, referral, conversion))
