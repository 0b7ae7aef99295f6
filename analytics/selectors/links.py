"""Admin list URLs behind every number of the dashboards, filtered like the numbers."""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass, replace
from urllib.parse import quote_plus, urlencode

from django.urls import NoReverseMatch, get_script_prefix, reverse

from analytics.selectors.periods import Period
from programs.models import Program, ProgramVariant
from referral_saas.statuses import GOOD_REWARD_STATUSES


@functools.lru_cache(maxsize=64)
def _changelist_path(name: str, prefix: str) -> str | None:
    try:
        return reverse(f"admin:{name}_changelist")
    except NoReverseMatch:
        return None


@functools.lru_cache(maxsize=4096)
def _quoted(value: str) -> str:
    return quote_plus(value)


def _admin_list(name: str, **params) -> str | None:
    """An admin changelist URL with a query string. A year's page builds about two thousand of these: the path
    and the quoting of the parameters that repeat (every key, the program, mode and variant) are cached."""
    url = _changelist_path(name, get_script_prefix())
    if url is None:
        return None
    query = "&".join(f"{_quoted(k)}={_quoted(str(v))}" for k, v in params.items() if v is not None)
    return f"{url}?{query}" if query else url


# Statuses as the rollup counts them: a sign-up is a referral that is not rejected, a reward costs when it is in good
# standing.
SIGNUP_STATUSES = "clicked,signed_up,converted"
GOOD_REWARDS = ",".join(GOOD_REWARD_STATUSES)


@dataclass(frozen=True)
class Links:
    """The admin lists behind the numbers, filtered like the numbers: program, period, live or test mode, variant.

    Each list counts what its number counts (the dashboard tests follow every link and compare): clicks without
    bots, sign-ups without rejected referrals, orders that are attributed, rewards in good standing. `ever` keeps
    only the period's end (numbers "since the start"); `currency` narrows the home page's lists to the programs in
    the shop's currency where the list can say so.
    """

    program: Program | None
    period: Period
    tz: str
    livemode: bool
    variant: ProgramVariant | None = None
    currency: str | None = None
    ever: bool = False
    dated: bool = True  # False: no time range (the part of a URL that every day shares)

    def day(self, day: datetime.date) -> Links:
        return replace(self, period=Period(day, day), ever=False)

    def days(self) -> list[dict]:
        """Per day of the period, the lists behind the day-by-day table: {"clicks", "signups", "orders",
        "rewards_cost"}. A year is 1,464 links: each is the shared URL plus the day's range."""
        undated = replace(self, dated=False)
        shared = {
            "clicks": (undated.clicks(), "occurred_at"),
            "signups": (undated.signups(), "created_at"),
            "orders": (undated.orders(), "occurred_at"),
            "rewards_cost": (undated.rewards_cost(), "created_at"),
        }
        result = []
        for day in self.period.dates():
            lo, hi = (_quoted(moment.isoformat()) for moment in Period(day, day).bounds(self.tz))
            result.append(
                {
                    name: None if url is None else f"{url}&{field_name}__gte={lo}&{field_name}__lt={hi}"
                    for name, (url, field_name) in shared.items()
                }
            )
        return result

    @functools.cached_property
    def _bounds(self) -> tuple[str, str]:
        lo, hi = self.period.bounds(self.tz)
        return lo.isoformat(), hi.isoformat()

    def _range(self, field_name: str) -> dict:
        if not self.dated:
            return {}
        lo, hi = self._bounds
        lower = {} if self.ever else {f"{field_name}__gte": lo}
        return {**lower, f"{field_name}__lt": hi}

    def _program(self) -> dict:
        return {"program__id__exact": self.program.pk} if self.program else {}

    def _mode(self, path: str = "livemode") -> dict:
        return {f"{path}__exact": int(self.livemode)}

    def _variant(self, path: str) -> dict:
        return {path: self.variant.pk} if self.variant else {}

    def clicks(self) -> str | None:
        return _admin_list(
            "tracking_click", **self._program(), is_bot__exact=0, **self._mode(),
            **self._variant("code__variant__id__exact"), **self._range("occurred_at"),
        )  # fmt: skip

    def participants(self, role: str | None = None) -> str | None:
        """Codes: one per participant who joined the program (role="referrer": the referrers only)."""
        return _admin_list(
            "tracking_referralcode", **self._program(), **self._mode(), **self._variant("variant__id__exact"),
            **self._range("created_at"), role=role,
        )  # fmt: skip

    def people(self) -> str | None:
        """The people who joined the program (the participants list and its export), live or test."""
        return _admin_list("programs_participant", program=self.program.pk if self.program else None, **self._mode())

    def referrals(self) -> str | None:
        """Every referral opened in the period, rejected ones too (the exports)."""
        return _admin_list(
            "tracking_referral", **self._program(), **self._mode(), **self._variant("variant__id__exact"),
            **self._range("created_at"),
        )  # fmt: skip

    def signups(self, **extra) -> str | None:
        return _admin_list(
            "tracking_referral", **self._program(), status__in=SIGNUP_STATUSES, **self._mode(),
            **self._variant("variant__id__exact"), **extra, **self._range("created_at"),
        )  # fmt: skip

    def orders(self, **extra) -> str | None:
        """Attributed orders (their count, or the sum of amount - refunded)."""
        currency = {"currency__exact": self.currency} if self.currency else {}
        return _admin_list(
            "tracking_conversion", **self._program(), status__exact="attributed", **currency, **self._mode(),
            **self._variant("referral__variant__id__exact"), **extra, **self._range("occurred_at"),
        )  # fmt: skip

    def shop_orders(self) -> str | None:
        """Every order of the shop in the currency, referred or not (the before/after table)."""
        return _admin_list(
            "tracking_conversion", currency__exact=self.currency, **self._mode(), **self._range("occurred_at")
        )

    def shares(self, channel: str | None = None) -> str | None:
        return _admin_list(
            "programs_shareevent", **self._program(), channel__exact=channel, **self._mode("participant__livemode"),
            **self._variant("variant"), **self._range("created_at"),
        )  # fmt: skip

    def rewards_cost(self) -> str | None:
        """Rewards in money and in good standing (their values, less what refunds took back from used coupons, add
        up to the rewards cost)."""
        currency = {"currency__exact": self.currency} if self.currency else {}
        return _admin_list(
            "rewards_reward", **self._program(), status__in=GOOD_REWARDS, unit__exact="money", **currency,
            **self._mode(), **self._variant("variant"), **self._range("created_at"),
        )  # fmt: skip

    def rewarded(self) -> str | None:
        """First purchases of the period with a reward in good standing (one row per purchase, however many
        rewards it paid)."""
        return self.orders(is_new_customer__exact=1, rewarded="yes")

    def fraud_queue(self) -> str | None:
        """What waits for a human now (not a period's number)."""
        return _admin_list(
            "fraud_fraudassessment", decision__exact="review", **self._program(), **self._mode(),
            **self._variant("referral__variant__id__exact"),
        )  # fmt: skip


def dashboard_url(program: Program, *, period: Period, livemode: bool) -> str:
    """A program's page showing the same period and mode as the page that links to it."""
    query = {"from": period.start.isoformat(), "to": period.end.isoformat()}
    if not livemode:
        query["mode"] = "test"
    return f"{reverse('admin:analytics_program_dashboard', args=[program.pk])}?{urlencode(query)}"
