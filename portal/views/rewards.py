"""Rewards, points, the catalog and milestones on the dashboard; redeeming points for a catalog item."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.utils.timezone import now as timezone_now
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from portal.views.base import SESSION_PREFIX, portal_view
from programs.models import Participant, Program
from referral_saas.api import is_id
from referral_saas.errors import ApplicationError
from rewards import selectors as reward_selectors
from rewards.models import COUPON_KINDS, CatalogItem, Kind, LedgerEntry, Reward, RewardRule
from rewards.selectors import ledger_balance
from rewards.services.issuing import MILESTONE_WAITING
from rewards.services.portal import portal_redeem, portal_redeem_token


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


def rewards_context(request, program: Program, participant: Participant) -> dict:
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
