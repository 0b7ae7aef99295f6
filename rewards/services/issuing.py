"""Releasing and issuing: when a reward's hold has passed, approve it and hand it over (coupon, pool code, points,
credit, cash due), in one transaction, so a crash leaves it either untouched or issued, never half or twice."""

from __future__ import annotations

import datetime
import logging
import secrets
from collections.abc import Callable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from rewards.models import Coupon, Kind, LedgerEntry, Notification, Reward, Side
from rewards.selectors import successful_referrals
from rewards.services.notify import notification_owe
from rewards.services.transitions import reward_note, reward_transition
from tracking.models import Referral

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: codes are typed at checkout
LEDGER_ACCOUNT = {
    Kind.POINTS: LedgerEntry.Account.POINTS,
    Kind.STORE_CREDIT: LedgerEntry.Account.CREDIT,
    Kind.CASH: LedgerEntry.Account.CASH,
}
ACTOR = "system:release"
logger = logging.getLogger(__name__)


class CouponPublishError(Exception):
    """The shop platform did not confirm a reward's coupon (down, refused): the reward stays approved, flagged, with
    the error as its reason, and is tried again (its hold_until moves on by REWARDS_PLATFORM_RETRY_SECONDS)."""


# Who creates a coupon code on the merchant's shop platform before it is handed over: registered at start-up by an
# app above (integrations, from its AppConfig.ready), as rewards cannot import it. A publisher takes the reward and
# the code drawn for it and returns the code as the platform created it (it may differ: a taken code gets a suffix),
# or None when the merchant has no platform that takes coupons; it raises CouponPublishError when it failed.
CouponPublisher = Callable[[Reward, str], str | None]
_coupon_publishers: list[CouponPublisher] = []


def coupon_publisher_register(publisher: CouponPublisher) -> None:
    if publisher not in _coupon_publishers:
        _coupon_publishers.append(publisher)


def _published(reward: Reward, code: str) -> str:
    for publisher in _coupon_publishers:
        created = publisher(reward, code)
        if created is not None:
            return created
    return code


def rewards_release_due(*, limit: int = 500) -> int:
    """Release rewards whose hold has passed (all merchants; the beat task). Returns how many were issued."""
    # A reward waiting for codes of an empty pool is left out until the pool has a free code again, so a merchant's
    # empty pool never fills every batch and stalls the others' releases.
    free_code = Coupon.all_merchants.filter(reward__isnull=True).filter(
        Q(pool_id=OuterRef("rule__pool_id")) | Q(pool_id=OuterRef("catalog_item__pool_id"))
    )
    due = list(
        Reward.all_merchants.filter(
            status__in=(Reward.Status.PENDING, Reward.Status.APPROVED), hold_until__lte=timezone.now()
        )
        # Test mode needs no pool code; a coupon the shop platform did not confirm yet is tried again when due.
        .filter(Q(flag__in=("", Reward.Flag.PLATFORM_PENDING)) | Q(livemode=False) | Exists(free_code))
        .order_by("hold_until")
        .values_list("merchant_id", "pk")[:limit]
    )
    issued = 0
    for merchant_id, reward_id in due:
        try:
            issued += reward_release(merchant_id=merchant_id, reward_id=reward_id) == Reward.Status.ISSUED
        except Exception:  # one broken reward must not stop the others; it is logged and retried next run
            logger.exception("could not release reward %s of merchant %s", reward_id, merchant_id)
    return issued


def reward_release(*, merchant_id: int, reward_id: int, actor: str = ACTOR, by_person: bool = False) -> str | None:
    """Approve (pending -> approved) and issue (approved -> issued) one due reward. A reward another worker holds
    is skipped (SKIP LOCKED), an issued one is left alone. Returns the status it ends in, or None if skipped.
    A person releasing it (`by_person`) overrides a milestone's wait for the referrer to reach it again."""
    with transaction.atomic():
        reward = (
            Reward.all_merchants.select_for_update(skip_locked=True, of=("self",))
            .select_related("merchant", "program", "rule__pool", "catalog_item__pool", "participant")
            .filter(
                merchant_id=merchant_id,
                pk=reward_id,
                status__in=(Reward.Status.PENDING, Reward.Status.APPROVED),
                hold_until__lte=timezone.now(),
            )
            .first()
        )
        if reward is None:
            return None
        if reward.referral_id and _referral_rejected(reward):
            # Safety net: a referral rejected after its reward was decided never pays.
            reward_transition(
                reward=reward,
                to=Reward.Status.REJECTED,
                actor=actor,
                reason="The referral was rejected.",
                reason_code=Reward.ReasonCode.REFERRAL_REJECTED,
            )
            return reward.status
        if reward.milestone is not None and not by_person and _milestone_lost(reward):
            # The hold waits for refunds and reviews: friends who counted towards it were refunded or rejected. It
            # waits (looked at again daily) until the referrer reaches the milestone again, as it is paid only once.
            if reward.reason != MILESTONE_WAITING:  # one audit line when it starts waiting, not one a day
                reward_note(reward=reward, actor=actor, reason=MILESTONE_WAITING)
            reward.hold_until = timezone.now() + MILESTONE_RECHECK
            reward.reason = MILESTONE_WAITING
            reward.save(update_fields=["hold_until", "reason"])
            return reward.status
        if reward.reason == MILESTONE_WAITING:
            reward.reason = ""
            reward.save(update_fields=["reason"])
        if reward.status == Reward.Status.PENDING:
            reward_transition(reward=reward, to=Reward.Status.APPROVED, actor=actor)
        return reward_issue(reward=reward, actor=actor).status


MILESTONE_RECHECK = datetime.timedelta(days=1)
MILESTONE_WAITING = "Waiting: a friend who counted was refunded or rejected; released when reached again."


def _milestone_lost(reward: Reward) -> bool:
    reward.program.merchant = reward.merchant  # loaded already: successful_referrals reads it
    return successful_referrals(program=reward.program, referrer=reward.participant) < reward.milestone


def _referral_rejected(reward: Reward) -> bool:

    return (
        Referral.objects.for_merchant(reward.merchant_id)
        .filter(pk=reward.referral_id, status=Referral.Status.REJECTED)
        .exists()
    )


def reward_issue(*, reward: Reward, actor: str) -> Reward:
    """Hand over an approved reward the caller holds locked. An empty coupon pool leaves it approved and flagged,
    and the owner is emailed (once a day per pool); the sweeper tries again."""
    now = timezone.now()
    changes: dict = {}
    kind = reward.kind
    source = reward.rule or reward.catalog_item
    valid_days = source.coupon_valid_days
    if kind in (Kind.PERCENT_COUPON, Kind.AMOUNT_COUPON):
        # A code drawn before and not yet confirmed by the shop platform is offered again, so a retry that finds it
        # created after all (the platform answered too late) does not create a second one.
        code = reward.coupon_code or _unique_coupon_code(
            reward, prefix=getattr(reward.rule, "coupon_prefix", "") or "RW"
        )
        try:
            changes["coupon_code"] = _published(reward, code)
        except CouponPublishError as exc:
            if reward.flag != Reward.Flag.PLATFORM_PENDING:  # one audit line when it starts waiting
                reward_note(reward=reward, actor=actor, reason=f"Not yet created on the shop platform: {exc}")
            reward.coupon_code, reward.flag = code, Reward.Flag.PLATFORM_PENDING
            reward.reason = f"Not yet created on the shop platform: {exc}"[:300]
            reward.hold_until = now + datetime.timedelta(seconds=settings.REWARDS_PLATFORM_RETRY_SECONDS)
            reward.save(update_fields=["coupon_code", "flag", "reason", "hold_until"])
            return reward
        if reward.flag == Reward.Flag.PLATFORM_PENDING:
            reward.reason = ""  # the platform's error is over (the transition saves the whole row)
    elif kind == Kind.POOL_COUPON and not reward.livemode:
        # The pool's codes are real discounts at the shop's checkout: test mode never uses one up.
        changes["coupon_code"] = _unique_coupon_code(reward, prefix="TEST")
    elif kind == Kind.POOL_COUPON:
        coupon = (
            Coupon.objects.for_merchant(reward.merchant)
            .select_for_update(skip_locked=True)
            .filter(pool_id=source.pool_id, reward__isnull=True)
            .order_by("pk")
            .first()
        )
        if coupon is None:
            if reward.flag != Reward.Flag.POOL_EMPTY:
                reward.flag = Reward.Flag.POOL_EMPTY
                reward.save(update_fields=["flag"])
            pool_empty_notify(pool_id=source.pool_id, program=reward.program)
            return reward
        coupon.reward, coupon.assigned_at = reward, now
        coupon.save(update_fields=["reward", "assigned_at"])
        changes["coupon_code"] = coupon.code
    elif kind in LEDGER_ACCOUNT:
        LedgerEntry.objects.for_merchant(reward.merchant).create(
            livemode=reward.livemode,
            program=reward.program,
            participant=reward.participant,
            account=LEDGER_ACCOUNT[kind],
            kind=LedgerEntry.Kind.EARNED,
            amount=reward.value,
            currency="" if kind == Kind.POINTS else reward.currency,
            reward=reward,
            note=str(reward.rule or reward.catalog_item)[:300],
        )
    if kind in (Kind.PERCENT_COUPON, Kind.AMOUNT_COUPON, Kind.POOL_COUPON) and valid_days:
        changes["expires_at"] = now + datetime.timedelta(days=valid_days)
    reward_transition(reward=reward, to=Reward.Status.ISSUED, actor=actor, flag="", **changes)
    if reward.catalog_item_id is None:  # a catalog redemption is shown on the spot: no email
        welcome = reward.side == Side.REFEREE and reward.conversion_id is None and reward.milestone is None
        kind = Notification.Kind.WELCOME_OFFER if welcome else Notification.Kind.REWARD_ISSUED
        notification_owe(kind, key=f"reward:{reward.pk}", participant=reward.participant, reward=reward)
    return reward


def pool_empty_notify(*, pool_id: int, program) -> None:
    """Tell the owners a coupon pool ran out: once a day per pool."""
    notification_owe(
        Notification.Kind.POOL_EMPTY, key=f"pool:{pool_id}:{timezone.now().date().isoformat()}", program=program
    )


def _unique_coupon_code(reward: Reward, *, prefix: str) -> str:
    """PREFIX-XXXXXXXX, unique per merchant and mode (a constraint; a collision draws again)."""
    scope = Reward.objects.for_merchant(reward.merchant).filter(livemode=reward.livemode)
    for _attempt in range(10):
        code = f"{prefix.upper()}-" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
        if not scope.filter(coupon_code=code).exists():
            return code
    raise IntegrityError("could not draw a free coupon code")  # pragma: no cover - 31^8 codes


def reward_release_early(*, reward: Reward, actor: str) -> str | None:
    """A person releases a pending or approved reward before its hold ends: issued now (or approved and flagged
    when its pool is empty). Returns the status it ends in, None if it could not be released."""
    with transaction.atomic():
        moved = (
            Reward.objects.for_merchant(reward.merchant)
            .filter(pk=reward.pk, status__in=(Reward.Status.PENDING, Reward.Status.APPROVED))
            .update(hold_until=timezone.now())
        )
        if not moved:
            return None
        return reward_release(merchant_id=reward.merchant_id, reward_id=reward.pk, actor=actor, by_person=True)
