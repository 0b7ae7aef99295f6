"""Leaderboards: the period's top referrers on the program dashboard, and the portal's all-time board."""

from __future__ import annotations

from dataclasses import replace

from django.db.models import Q, Sum
from django.urls import NoReverseMatch, reverse

from analytics import metrics
from analytics.models import ReferrerDailyStats, ReferrerStats
from analytics.selectors.links import Links
from analytics.selectors.periods import Period
from analytics.selectors.sums import ZERO, last_rollup_at
from programs.models import Participant, Program
from programs.selectors import public_names_version
from referral_saas.money import format_money
from rewards.selectors import milestone_progress, rule_in_words

LEADERBOARD_SCAN_DAYS = 62


def _leaderboard_key(row: dict) -> tuple:
    return (-row["new_customers"], -row["signups"], -row["revenue"], row["participant"])


def _referrer_sums(*, merchant, livemode: bool, program: Program, period: Period, participants=None):
    qs = ReferrerDailyStats.objects.for_merchant(merchant).filter(
        livemode=livemode, program=program, day__range=(period.start, period.end)
    )
    if participants is not None:
        qs = qs.filter(participant__in=participants)
    return qs.values("participant").annotate(
        new_customers=Sum("new_customers"), signups=Sum("signups"), orders=Sum("orders"), revenue=Sum("revenue")
    )


def top_referrers(
    *, merchant, livemode: bool, program: Program, period: Period, limit: int = 10, links: Links | None = None
) -> list[dict]:
    """The period's best referrers: friends who bought, then friends signed up, then revenue.

    A short period sums its referrer days directly. A long one would sum most of the table, so it walks referrers
    in the order of their all-time results (ReferrerStats, indexed in that order) and stops once the tenth best
    period result beats the next referrer's all-time result: nobody further down can do better in a part of
    their history than in all of it.
    """
    if period.days <= LEADERBOARD_SCAN_DAYS:
        rows = list(
            _referrer_sums(merchant=merchant, livemode=livemode, program=program, period=period).order_by(
                "-new_customers", "-signups", "-revenue", "participant"
            )[:limit]
        )
    else:
        ranked = (
            ReferrerStats.objects.for_merchant(merchant)
            .filter(livemode=livemode, program=program)
            .order_by("-new_customers", "-signups", "participant")
            .values_list("participant", "new_customers", "signups")
        )
        best: list[dict] = []
        offset, batch = 0, 4 * limit
        while True:
            candidates = list(ranked[offset : offset + batch])
            if not candidates:
                break
            found = _referrer_sums(
                merchant=merchant, livemode=livemode, program=program, period=period,
                participants=[c[0] for c in candidates],
            )  # fmt: skip
            best = sorted([*best, *found], key=_leaderboard_key)[:limit]
            offset += batch
            batch *= 2
            _pk, next_customers, next_signups = candidates[-1]
            if len(best) >= limit and (best[-1]["new_customers"], best[-1]["signups"]) > (next_customers, next_signups):
                break
        rows = best
    rows = [dict(row) for row in rows if row["new_customers"] or row["signups"] or row["orders"]]
    people = Participant.objects.for_merchant(merchant).in_bulk([r["participant"] for r in rows])
    for rank, row in enumerate(rows, start=1):
        person = people.get(row["participant"])
        row["rank"] = rank
        row["revenue_text"] = format_money(row["revenue"] or ZERO, program.currency)
        row["name"] = str(person) if person else "?"
        row["email"] = person.email if person else None
        try:
            row["link"] = reverse("admin:programs_participant_change", args=[row["participant"]])
        except NoReverseMatch:
            row["link"] = None
        if links is not None:
            # The referrer's friends of the period (the leaderboard is not split by variant).
            mine, referrer = replace(links, variant=None), row["participant"]
            orders = mine.orders(referral__referrer__id__exact=referrer)
            row["links"] = {
                "new_customers": mine.orders(referral__referrer__id__exact=referrer, is_new_customer__exact=1),
                "signups": mine.signups(referrer__id__exact=referrer),
                "orders": orders,
                "revenue": orders,
            }
    return rows


def portal_leaderboard(*, program: Program, participant: Participant, limit: int = 10) -> dict:
    """The program's top referrers (first name and initial only), the participant's rank and milestone progress.

    Ranked by friends who bought (then friends signed up), from the all-time rollup; blocked and erased people are
    left out. The participant's own milestone progress is counted live, the way rewards count it.
    """

    merchant = program.merchant
    scope = ReferrerStats.objects.for_merchant(merchant).filter(livemode=participant.livemode, program=program)
    board = _cached_board(program=program, livemode=participant.livemode, limit=limit)
    entries = [{**entry, "is_me": entry["participant_id"] == participant.pk} for entry in board["entries"]]
    mine = scope.filter(participant=participant).first()
    my_rank = None
    if mine is not None and (mine.new_customers or mine.signups):
        better = (
            scope.filter(participant__status=Participant.Status.ACTIVE)
            .filter(
                Q(new_customers__gt=mine.new_customers) | Q(new_customers=mine.new_customers, signups__gt=mine.signups)
            )
            .count()
        )
        my_rank = better + 1
    # Milestones as the rewards engine counts them (friends who bought and passed fraud scoring), live.
    # Only the milestones this participant can still earn (their variant, offers not ended) or already reached.
    progress = milestone_progress(program=program, participant=participant)
    successful = progress.successful if progress else 0
    reached, upcoming = (progress.reached, progress.upcoming) if progress else ([], [])
    steps = [
        {"target": rule.milestone, "name": rule_in_words(rule, program.currency), "reached": rule in reached}
        for rule in [*reached, *upcoming]
    ]
    following = next((step for step in steps if not step["reached"]), None)
    return {
        "entries": entries,
        "my_rank": my_rank,
        "ranked": board["ranked"],
        "my_new_customers": mine.new_customers if mine else 0,
        "my_signups": mine.signups if mine else 0,
        "successful": successful,
        "milestones": steps,
        "next_milestone": following,
        "to_next": (following["target"] - successful) if following else None,
        "progress": metrics.ratio(successful, following["target"]) if following else None,
        "updated_at": last_rollup_at(merchant=merchant),
    }


BOARD_TTL = 60


def _cached_board(*, program: Program, livemode: bool, limit: int) -> dict:
    """The top of the board and how many are on it: the same for every participant, so computed once a minute."""
    from django.core.cache import cache

    version = public_names_version(merchant_id=program.merchant_id)
    key = f"analytics:board:{program.pk}:{int(livemode)}:{limit}:{version}"
    board = cache.get(key)
    if board is not None:
        return board
    ranked = (
        ReferrerStats.objects.for_merchant(program.merchant)
        .filter(livemode=livemode, program=program, participant__status=Participant.Status.ACTIVE)
        .filter(Q(new_customers__gt=0) | Q(signups__gt=0))
    )
    top = list(ranked.select_related("participant").order_by("-new_customers", "-signups", "participant_id")[:limit])
    entries = []
    # Competition ranking: equal scores share a rank ("1, 2, 2, 4").
    previous_score, rank = None, 0
    for position, row in enumerate(top, start=1):
        score = (row.new_customers, row.signups)
        if score != previous_score:
            rank, previous_score = position, score
        entries.append(
            {
                "rank": rank,
                "participant_id": row.participant_id,
                # Empty for someone without a name: the page says "Referrer #<rank>" in the visitor's language.
                "name": row.participant.public_name,
                "new_customers": row.new_customers,
                "signups": row.signups,
            }
        )
    board = {"entries": entries, "ranked": ranked.count()}
    cache.set(key, board, BOARD_TTL)
    return board
