"""The portal's reads that no app below owns: what became of each friend a referrer brought (issue 18, items 4-5).

A referrer sees one line per friend: clicked, signed up, bought, under review (the shop's fraud check holds it), or
did not qualify, with the reason in their language. The reasons come from the codes the apps below store (a
referral's or an order's rejection reason, a reward's reason code, the reward rule's minimum order), never from the
staff's free-text notes.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import Prefetch
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from fraud.models import Decision, FraudAssessment
from programs.models import Participant, Program
from referral_saas.money import format_money
from rewards.models import Reward, RewardRule, Side, Work
from rewards.selectors import program_rules, qualifying_minimum, reward_in_words
from tracking.models import Conversion, Referral

FRIENDS_SHOWN = 50
ENDED = (Reward.Status.REJECTED, Reward.Status.VOIDED, Reward.Status.CLAWED_BACK)
LABELS = {
    "clicked": pgettext_lazy("friend status", "Clicked your link"),
    "signed_up": pgettext_lazy("friend status", "Signed up"),
    "bought": pgettext_lazy("friend status", "Bought"),
    "under_review": pgettext_lazy("friend status", "Under review"),
    "not_qualified": pgettext_lazy("friend status", "Did not qualify"),
}


@dataclass(frozen=True)
class FriendRow:
    who: str
    status: str  # clicked | signed_up | bought | under_review | not_qualified
    label: str
    detail: str
    at: datetime.datetime


def _who(referral: Referral) -> str:
    """The friend as the referrer may see them: their first name if they gave one, else a masked email."""
    if referral.referee is not None and referral.referee.name:
        return referral.referee.name.split()[0]
    email = referral.referee_email or ""
    if "@" in email:
        local, domain = email.rsplit("@", 1)
        return f"{local[:1]}•••@{domain}"
    return _("A friend")


def _referral_reason(code: str) -> str:
    reason = Referral.Reason
    return {
        reason.SELF_REFERRAL: _("You cannot refer yourself."),
        reason.BLOCKED_REFERRER: _("Your account cannot earn rewards. Please contact the shop."),
        reason.EXISTING_CUSTOMER: _("They had already bought at the shop before."),
        reason.FRAUD: _("The purchase did not pass the shop's checks."),
        reason.MANUAL: _("The shop decided it does not count."),
        reason.PROGRAM_INACTIVE: _("The program was not running at the time."),
        reason.OUTSIDE_WINDOW: _("They bought after your referral had expired."),
        reason.CURRENCY_MISMATCH: _("The order was in a currency the program does not take."),
    }.get(code, _("It does not meet the program's terms."))


def _reward_reason(reward: Reward) -> str:
    code = Reward.ReasonCode
    return {
        code.FRAUD: _("The purchase did not pass the shop's checks."),
        code.CAP: _("You reached the program's limit of rewards."),
        code.BUDGET: _("The program's reward budget has run out."),
        code.REFUND: _("The order was returned."),
    }.get(reward.reason_code, _("It does not meet the program's terms."))


def _minimum(program: Program, variant_id: int | None, rules: list[RewardRule], orders: list[Conversion]):
    """The program's qualifying minimum (rewards.selectors.qualifying_minimum: what milestones count too) when every
    order of the friend stayed under it."""
    lowest = qualifying_minimum(program=program, variant_id=variant_id, rules=rules)
    if lowest is None:
        return None
    return lowest if all(order.kept_program_amount < lowest for order in orders) else None


def friend_statuses(*, participant: Participant, program: Program) -> list[FriendRow]:
    """The latest FRIENDS_SHOWN friends of this referrer in this program, newest first, each with where they are."""
    merchant = participant.merchant
    referrals = list(
        Referral.objects.for_merchant(merchant)
        .filter(program=program, referrer=participant)
        .select_related("referee")
        .prefetch_related(
            Prefetch(
                "conversions",
                queryset=Conversion.objects.for_merchant(merchant).order_by("occurred_at"),
                to_attr="orders",
            )
        )
        .order_by("-created_at")[:FRIENDS_SHOWN]
    )
    if not referrals:
        return []
    ids = [referral.pk for referral in referrals]
    in_review = set(
        FraudAssessment.objects.for_merchant(merchant)
        .filter(referral_id__in=ids, decision=Decision.REVIEW)
        .values_list("referral_id", flat=True)
    )
    rewards: dict[int, list[Reward]] = {}
    for reward in Reward.objects.for_merchant(merchant).filter(
        referral_id__in=ids, participant=participant, side=Side.REFERRER
    ):
        rewards.setdefault(reward.referral_id, []).append(reward)
    rules = program_rules(program)
    rows = []
    for referral in referrals:
        bought = [order for order in referral.orders if order.status == Conversion.Status.ATTRIBUTED]
        refused = [order for order in referral.orders if order.status == Conversion.Status.REJECTED]
        status, detail, at = "", "", referral.created_at
        if referral.status == Referral.Status.REJECTED:
            status, detail = "not_qualified", _referral_reason(referral.rejection_reason)
        elif referral.pk in in_review:
            status = "under_review"
            detail = _("The shop is checking this purchase; a reward waits until the check is done.")
        elif bought:
            at = bought[-1].occurred_at
            paid = [r for r in rewards.get(referral.pk, []) if r.status not in ENDED]
            ended = [r for r in rewards.get(referral.pk, []) if r.status in ENDED]
            minimum = None if paid or ended else _minimum(program, referral.variant_id, rules, bought)
            if minimum is not None:
                status = "not_qualified"
                detail = _("The order was under the program's minimum of %(amount)s.") % {
                    "amount": format_money(minimum, program.currency)
                }
            elif ended and not paid:
                status, detail = "not_qualified", _reward_reason(ended[-1])
            else:
                status = "bought"
                detail = _("Your reward is on its way.") if paid else ""
        elif refused:
            at = refused[-1].occurred_at
            status, detail = "not_qualified", _referral_reason(refused[-1].rejection_reason)
        elif referral.status == Referral.Status.CLICKED:
            status = "clicked"
        else:
            status, at = "signed_up", referral.signed_up_at or referral.created_at
        rows.append(FriendRow(who=_who(referral), status=status, label=str(LABELS[status]), detail=detail, at=at))
    return rows


# --- the friend's welcome page --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WelcomeGift:
    state: str  # waiting (a worker has not decided yet) | review (the shop checks it) | ready | none (nothing to give)
    what: str = ""  # the gift in words, in the active language
    coupon_code: str = ""
    expires_at: datetime.datetime | None = None


def welcome_gift(*, referral: Referral) -> WelcomeGift:
    """What the friend who signed up on the welcome page got: their sign-up reward once a worker has decided and
    issued it (its coupon code to reveal), "waiting" until then, "review" while the shop's fraud review holds it,
    "none" when the sign-up was refused or earns nothing."""
    if referral.status == Referral.Status.REJECTED:
        return WelcomeGift("none")
    rewards = list(
        Reward.objects.for_merchant(referral.merchant_id)
        .filter(referral=referral, side=Side.REFEREE, conversion__isnull=True, milestone__isnull=True)
        .order_by("pk")
    )
    ready = [reward for reward in rewards if reward.status in (Reward.Status.ISSUED, Reward.Status.REDEEMED)]
    if ready:
        gift = ready[0]
        what = reward_in_words(gift.kind, gift.value, gift.currency, gift.description)
        return WelcomeGift("ready", what, gift.coupon_code, gift.expires_at)
    if rewards and all(reward.status in ENDED for reward in rewards):
        return WelcomeGift("none")
    work = (
        Work.objects.for_merchant(referral.merchant_id)
        .filter(referral=referral, conversion__isnull=True, refund__isnull=True)
        .values_list("stage", flat=True)
        .first()
    )
    if work == Work.Stage.REVIEW:
        return WelcomeGift("review")
    if work == Work.Stage.DONE and not rewards:
        return WelcomeGift("none")
    return WelcomeGift("waiting")
