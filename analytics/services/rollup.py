# ruff: noqa: S608 - the SQL here is assembled from model table names and constant column lists; values are parameters.
"""The rollups: raw events -> DailyStats, ShopDailyStats, CustomerStats, ReferrerDailyStats, ReferrerStats.

Rules this module enforces:

- A rollup row is always a full recount of its key from the raw tables (never an increment), so running a key
  twice changes nothing, and a late event or a refund only needs its key (program, day) recounted.
- An incremental run finds the keys that changed since the last run from the raw tables' ids (clicks, codes,
  invites, shares, referrals, orders, refunds, rewards and their audit trail, fraud assessments and reviews are all
  rows that are inserted when something happens; a fraud reject or review also touches every order of its referral,
  which it rejects or reinstates), then recounts those keys with set-based SQL (INSERT ... ON
  CONFLICT DO UPDATE), one statement per source for all keys at once. Every read is an index range scan on
  (merchant, program, time) or a primary-key range, so a run costs what happened since the last one, not history.
- Days are calendar days in the merchant's time zone.
- One run at a time (a transaction-level advisory lock); a run is one transaction: all of it or none of it.
- Raw clicks of months that retention dropped (tracking.ClickPurge) are not recounted: a day before them keeps the
  click numbers counted while they existed (retention drops only clicks whose ids the rollups are done with, see
  `rollup_clicks_counted_through`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.apps import apps
from django.db import connection, transaction
from django.utils import timezone

from analytics.metrics import TTP_EDGES
from analytics.models import RollupState
from referral_saas.statuses import GOOD_REWARD_STATUSES
from referral_saas.tenancy.models import Merchant

logger = logging.getLogger(__name__)

# Rows get their ids before their transaction commits: a run re-reads ids from a checkpoint taken at least this long
# before the previous run, so a transaction that was open then (and lasts less than this) is still counted.
LOOKBACK = timedelta(minutes=10)
LOCK_KEY = 0x616E616C79746963  # "analytic": one rollup at a time

# (source name, app label, model name): the insert-only rows whose ids drive the incremental run.
SOURCES = [
    ("click", "tracking", "Click"),
    ("code", "tracking", "ReferralCode"),
    ("invite", "programs", "Invite"),
    ("share", "programs", "ShareEvent"),
    ("referral", "tracking", "Referral"),
    ("conversion", "tracking", "Conversion"),
    ("refund", "tracking", "Refund"),
    ("reward", "rewards", "Reward"),
    ("reward_event", "rewards", "RewardEvent"),
    ("reward_adjustment", "rewards", "RewardAdjustment"),
    ("assessment", "fraud", "FraudAssessment"),
    ("review", "fraud", "FraudReviewEvent"),
]

# DailyStats columns recounted for a key, by kind.
COUNT_COLUMNS = [
    "clicks", "unique_visitors", "bot_clicks", "participants_joined", "joined_and_shared", "first_shares",
    "invites_sent", "shares", "signups", "referrals_rejected", "attributed_orders", "rejected_orders",
    "referred_new_customers", "rewarded", "cohort_customers", "cohort_repeaters", "rewards", "fraud_flagged",
    "fraud_rejected",
]  # fmt: skip
MONEY_COLUMNS = [
    "referred_revenue_gross", "referred_refunds", "referred_revenue", "cohort_revenue", "cost_pending",
    "cost_approved", "cost_issued", "cost_redeemed", "cost_rejected", "cost_voided", "cost_clawed_back",
]  # fmt: skip
JSON_COLUMNS = ["shares_by_channel", "time_to_purchase"]
DAILY_COLUMNS = COUNT_COLUMNS + MONEY_COLUMNS + JSON_COLUMNS

SHOP_COUNT_COLUMNS = [
    "orders", "attributed_orders", "new_customers", "referred_new_customers", "other_cohort_customers",
    "other_cohort_repeaters",
]  # fmt: skip
SHOP_MONEY_COLUMNS = ["revenue_gross", "refunds", "revenue", "attributed_revenue", "other_cohort_revenue"]
SHOP_COLUMNS = SHOP_COUNT_COLUMNS + SHOP_MONEY_COLUMNS

REFERRER_COLUMNS = ["signups", "orders", "new_customers", "revenue"]

# Numbers of a day that come from ReferrerStats / CustomerStats: kept up to date by exact changes between recounts.
DERIVED_DAILY_COLUMNS = [
    "participants_joined", "joined_and_shared", "first_shares", "cohort_customers", "cohort_repeaters",
    "cohort_revenue",
]  # fmt: skip
SHOP_DERIVED = [
    "new_customers", "referred_new_customers", "other_cohort_customers", "other_cohort_repeaters",
    "other_cohort_revenue",
]  # fmt: skip


def _table(app_label: str, model_name: str) -> str:
    return apps.get_model(app_label, model_name)._meta.db_table


def _present(cursor) -> set[str]:
    """The sources whose tables exist (the fraud app's may not be migrated yet on every deployment)."""
    present = set()
    for name, app, model in SOURCES:
        try:
            table = _table(app, model)
        except LookupError:
            continue
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        if cursor.fetchone()[0]:
            present.add(name)
    return present


def _day(column: str, tz: str = "m.timezone") -> str:
    return f"(({column}) AT TIME ZONE {tz})::date"


CUSTOMER_KEY = (
    "CASE WHEN {c}.customer_external_id IS NOT NULL THEN 'x:' || {c}.customer_external_id "
    "WHEN {c}.customer_email_normalized IS NOT NULL THEN 'e:' || {c}.customer_email_normalized END"
)

# An order counts in its program's currency when it has a program amount (the same amount, or converted at the
# merchant's rate), else as the shop reported it. The programs' revenue, the shop's baseline in a currency and the
# customers' lifetime revenue then add up the same amounts: a EUR order attributed to a PLN program is PLN revenue
# of the program and of the shop (its share of the shop's PLN sales never passes 100%).
BOOKED_CURRENCY = "(CASE WHEN {c}.program_amount IS NULL THEN {c}.currency ELSE {c}.program_currency END)"
BOOKED_AMOUNT = "COALESCE({c}.program_amount, {c}.amount)"
BOOKED_REFUNDED = "(CASE WHEN {c}.program_amount IS NULL THEN {c}.refunded_amount ELSE {c}.program_refunded_amount END)"
BOOKED_NET = f"({BOOKED_AMOUNT} - {BOOKED_REFUNDED})"


def _booked(c: str = "c") -> dict[str, str]:
    """The booked currency, amount, refunds and net of the orders aliased `c`, for f-strings."""
    return {
        "currency": BOOKED_CURRENCY.format(c=c),
        "amount": BOOKED_AMOUNT.format(c=c),
        "refunded": BOOKED_REFUNDED.format(c=c),
        "net": BOOKED_NET.format(c=c),
    }


@dataclass
class RollupResult:
    ran: bool = True
    keys: int = 0  # program days recounted
    shop_keys: int = 0
    customers: int = 0
    seconds: float = 0.0
    watermarks: dict = field(default_factory=dict)


# --- the engine ---------------------------------------------------------------------------------------------------


class _Rollup:
    """Temp tables of touched keys (_rk_days, _rk_shop, _rk_customers), filled by discovery, then recounted."""

    def __init__(self, cursor):
        self.cur = cursor
        self.present = _present(cursor)
        self.fraud = {"assessment", "review"} <= self.present
        self.t = {name: _table(app, model) for name, app, model in SOURCES if name in self.present}
        self.t.update(
            daily=_table("analytics", "DailyStats"),
            shop=_table("analytics", "ShopDailyStats"),
            customers=_table("analytics", "CustomerStats"),
            referrer_daily=_table("analytics", "ReferrerDailyStats"),
            referrers=_table("analytics", "ReferrerStats"),
            merchant=_table("tenancy", "Merchant"),
            program=_table("programs", "Program"),
            participant=_table("programs", "Participant"),
        )

    def clicks_from(self) -> datetime | str:
        """Raw clicks exist from here on: retention dropped the months before (and the rollups counted them)."""
        self.cur.execute(f"SELECT max(purged_before) FROM {_table('tracking', 'ClickPurge')}")
        return self.cur.fetchone()[0] or "-infinity"

    def sql(self, statement: str, params: dict | None = None) -> None:
        self.cur.execute(statement.format(**self.t), params or None)

    def create_key_tables(self) -> None:
        # ON COMMIT DROP does not fire inside an outer transaction (a caller's atomic block, the tests): drop first.
        self.sql(
            """
            DROP TABLE IF EXISTS _rk_days, _rk_shop, _rk_customers, _rk_rewards, _rk_assessments, _rk_conversions,
              _rk_refchg, _rk_custchg;
            CREATE TEMP TABLE _rk_refchg (sign int, merchant_id bigint, livemode boolean, program_id bigint,
              variant_id bigint, joined_day date, shared boolean, first_shared_day date) ON COMMIT DROP;
            CREATE TEMP TABLE _rk_custchg (sign int, merchant_id bigint, livemode boolean, program_id bigint,
              variant_id bigint, currency varchar(3), first_day date, referred boolean, orders bigint,
              revenue numeric) ON COMMIT DROP;
            CREATE TEMP TABLE _rk_days (merchant_id bigint, livemode boolean, program_id bigint, day date)
              ON COMMIT DROP;
            CREATE TEMP TABLE _rk_shop (merchant_id bigint, livemode boolean, currency varchar(3), day date)
              ON COMMIT DROP;
            CREATE TEMP TABLE _rk_customers (merchant_id bigint, livemode boolean, customer_key text) ON COMMIT DROP;
            CREATE TEMP TABLE _rk_rewards (id bigint) ON COMMIT DROP;
            CREATE TEMP TABLE _rk_assessments (id bigint, reviewed boolean) ON COMMIT DROP;
            CREATE TEMP TABLE _rk_conversions (id bigint) ON COMMIT DROP;
            """
        )

    # --- discovery: which keys changed (id ranges of the raw tables) ----------------------------------------------

    def discover(self, lo: dict[str, int], hi: dict[str, int]) -> None:
        def rng(name: str) -> dict:
            return {"lo": lo.get(name, 0), "hi": hi.get(name, 0)}

        self.sql(
            f"""
            INSERT INTO _rk_days
            SELECT DISTINCT c.merchant_id, c.livemode, c.program_id, {_day("c.occurred_at")}
            FROM {{click}} c JOIN {{merchant}} m ON m.id = c.merchant_id
            WHERE c.id > %(lo)s AND c.id <= %(hi)s
            """,
            rng("click"),
        )
        self.referrers_from_codes("rc.id > %(lo)s AND rc.id <= %(hi)s", rng("code"))
        self.sql(
            f"""
            INSERT INTO _rk_days
            SELECT DISTINCT i.merchant_id, p.livemode, i.program_id, {_day("i.created_at")}
            FROM {{invite}} i JOIN {{participant}} p ON p.id = i.participant_id
            JOIN {{merchant}} m ON m.id = i.merchant_id
            WHERE i.id > %(lo)s AND i.id <= %(hi)s
            """,
            rng("invite"),
        )
        self.sql(
            f"""
            INSERT INTO _rk_days
            SELECT DISTINCT s.merchant_id, p.livemode, s.program_id, {_day("s.created_at")}
            FROM {{share}} s JOIN {{participant}} p ON p.id = s.participant_id
            JOIN {{merchant}} m ON m.id = s.merchant_id
            WHERE s.id > %(lo)s AND s.id <= %(hi)s
            """,
            rng("share"),
        )
        self.first_shares("s.id > %(lo)s AND s.id <= %(hi)s", rng("share"))
        self.sql(
            f"""
            INSERT INTO _rk_days
            SELECT DISTINCT r.merchant_id, r.livemode, r.program_id, {_day("r.created_at")}
            FROM {{referral}} r JOIN {{merchant}} m ON m.id = r.merchant_id
            WHERE r.id > %(lo)s AND r.id <= %(hi)s
            """,
            rng("referral"),
        )
        # Orders: new ones, refunded ones, and those whose fraud assessment was made or reviewed.
        self.sql(
            """
            INSERT INTO _rk_conversions SELECT id FROM {conversion} WHERE id > %(lo)s AND id <= %(hi)s;
            """,
            rng("conversion"),
        )
        self.sql(
            "INSERT INTO _rk_conversions SELECT conversion_id FROM {refund} WHERE id > %(lo)s AND id <= %(hi)s",
            rng("refund"),
        )
        self.sql(
            """
            INSERT INTO _rk_rewards SELECT id FROM {reward} WHERE id > %(rw_lo)s AND id <= %(rw_hi)s
            UNION SELECT reward_id FROM {reward_event} WHERE id > %(ev_lo)s AND id <= %(ev_hi)s
            UNION SELECT reward_id FROM {reward_adjustment} WHERE id > %(adj_lo)s AND id <= %(adj_hi)s
            """,
            {
                "rw_lo": lo.get("reward", 0),
                "rw_hi": hi.get("reward", 0),
                "ev_lo": lo.get("reward_event", 0),
                "ev_hi": hi.get("reward_event", 0),
                "adj_lo": lo.get("reward_adjustment", 0),
                "adj_hi": hi.get("reward_adjustment", 0),
            },
        )
        if self.fraud:
            self.sql(
                """
            INSERT INTO _rk_assessments SELECT id, false FROM {assessment} WHERE id > %(a_lo)s AND id <= %(a_hi)s
            UNION SELECT assessment_id, true FROM {review} WHERE id > %(r_lo)s AND id <= %(r_hi)s
            """,
                {
                    "a_lo": lo.get("assessment", 0),
                    "a_hi": hi.get("assessment", 0),
                    "r_lo": lo.get("review", 0),
                    "r_hi": hi.get("review", 0),
                },
            )
        self.keys_of_touched_rows()

    def keys_of_touched_rows(self) -> None:
        """Keys of the rewards, assessments and orders collected in _rk_rewards / _rk_assessments / _rk_conversions."""
        self.sql(
            f"""
            INSERT INTO _rk_days
            SELECT DISTINCT w.merchant_id, w.livemode, w.program_id, d.day
            FROM (SELECT DISTINCT id FROM _rk_rewards) t
            JOIN {{reward}} w ON w.id = t.id
            JOIN {{merchant}} m ON m.id = w.merchant_id
            LEFT JOIN {{conversion}} c ON c.id = w.conversion_id
            CROSS JOIN LATERAL (VALUES ({_day("w.created_at")}), ({_day("c.occurred_at")})) AS d(day)
            WHERE d.day IS NOT NULL
            """
        )
        if self.fraud:
            self.sql(
                f"""
            INSERT INTO _rk_days
            SELECT DISTINCT a.merchant_id, a.livemode, a.program_id, d.day
            FROM (SELECT DISTINCT id FROM _rk_assessments) t
            JOIN {{assessment}} a ON a.id = t.id
            JOIN {{merchant}} m ON m.id = a.merchant_id
            JOIN {{referral}} r ON r.id = a.referral_id
            CROSS JOIN LATERAL (VALUES ({_day("a.created_at")}), ({_day("r.created_at")})) AS d(day);
            INSERT INTO _rk_conversions
            SELECT a.conversion_id FROM (SELECT DISTINCT id FROM _rk_assessments) t JOIN {{assessment}} a ON a.id = t.id
            WHERE a.conversion_id IS NOT NULL;
            -- A reject (automatic or a human's) rejects the referral and every other order of it, an approval of a
            -- rejected one reinstates it: those orders' days change too. Their ids come from the referral (an
            -- index read per referral); an automatic approve or review changes no other order.
            INSERT INTO _rk_conversions
            SELECT c.id
            FROM (
              SELECT DISTINCT a.merchant_id, a.referral_id
              FROM _rk_assessments t JOIN {{assessment}} a ON a.id = t.id
              WHERE t.reviewed OR a.decision = 'reject'
            ) x
            JOIN {{conversion}} c ON c.referral_id = x.referral_id AND c.merchant_id = x.merchant_id
            """
            )
        # An order touches its program's day, the day its referral was opened (the order may have converted or
        # rejected it), the shop's day in its currency, and its customer.
        self.sql(
            f"""
            CREATE TEMP TABLE _rk_conv ON COMMIT DROP AS
            SELECT c.merchant_id, c.livemode, c.program_id, {_booked()["currency"]} AS currency,
                   {_day("c.occurred_at")} AS day,
                   {_day("r.created_at")} AS referral_day, {CUSTOMER_KEY.format(c="c")} AS customer_key
            FROM (SELECT DISTINCT id FROM _rk_conversions) t
            JOIN {{conversion}} c ON c.id = t.id
            JOIN {{merchant}} m ON m.id = c.merchant_id
            LEFT JOIN {{referral}} r ON r.id = c.referral_id;
            INSERT INTO _rk_days
            SELECT merchant_id, livemode, program_id, day FROM _rk_conv WHERE program_id IS NOT NULL
            UNION SELECT merchant_id, livemode, program_id, referral_day FROM _rk_conv WHERE referral_day IS NOT NULL;
            INSERT INTO _rk_shop SELECT DISTINCT merchant_id, livemode, currency, day FROM _rk_conv;
            INSERT INTO _rk_customers
            SELECT DISTINCT merchant_id, livemode, customer_key FROM _rk_conv WHERE customer_key IS NOT NULL;
            DROP TABLE _rk_conv;
            """
        )

    # --- per-referrer and per-customer facts, and the exact changes they make to days ------------------------------
    #
    # A day's "joined", "joined and shared", "first-time sharers" and cohort numbers come from ReferrerStats and
    # CustomerStats. When a row of those changes, the change is recorded with its old (-1) and new (+1) values, and
    # applied to the days it belongs to as a delta, unless the day is recounted in full in the same run. So an old
    # customer's new order costs one row, not a recount of the day they first bought.

    def referrers_from_codes(self, where: str, params: dict) -> None:
        """A code is a participant joining a program: its ReferrerStats row (joined when, which variant)."""
        self.sql(
            f"""
            WITH old AS (
              SELECT r.id, r.merchant_id, r.livemode, r.program_id, r.variant_id, r.joined_day,
                     r.first_shared_at IS NOT NULL AS shared, r.first_shared_day
              FROM {{code}} rc
              JOIN {{referrers}} r ON r.merchant_id = rc.merchant_id AND r.livemode = rc.livemode
                                  AND r.program_id = rc.program_id AND r.participant_id = rc.participant_id
              WHERE {where}
            ),
            up AS (
              INSERT INTO {{referrers}} (merchant_id, livemode, program_id, participant_id, variant_id, joined_at,
                                          joined_day, signups, orders, new_customers, revenue)
              SELECT rc.merchant_id, rc.livemode, rc.program_id, rc.participant_id, rc.variant_id, rc.created_at,
                     {_day("rc.created_at")}, 0, 0, 0, 0
              FROM {{code}} rc JOIN {{merchant}} m ON m.id = rc.merchant_id
              WHERE {where}
              ON CONFLICT ON CONSTRAINT referrer_stats_unique_key DO UPDATE
                SET variant_id = EXCLUDED.variant_id, joined_at = EXCLUDED.joined_at, joined_day = EXCLUDED.joined_day
                WHERE ({{referrers}}.variant_id, {{referrers}}.joined_at)
                      IS DISTINCT FROM (EXCLUDED.variant_id, EXCLUDED.joined_at)
              RETURNING id, merchant_id, livemode, program_id, variant_id, joined_day,
                        first_shared_at IS NOT NULL AS shared, first_shared_day
            )
            INSERT INTO _rk_refchg
            SELECT 1, merchant_id, livemode, program_id, variant_id, joined_day, shared, first_shared_day FROM up
            UNION ALL
            SELECT -1, o.merchant_id, o.livemode, o.program_id, o.variant_id, o.joined_day, o.shared,
                   o.first_shared_day
            FROM old o JOIN up ON up.id = o.id
            """,
            params,
        )

    def first_shares(self, where: str, params: dict, reset: bool = False) -> None:
        """The earliest share of each referrer (LEAST: a late, earlier share moves it back; re-reading is harmless)."""
        condition = (
            "r.first_shared_at IS DISTINCT FROM s.at"
            if reset
            else "(r.first_shared_at IS NULL OR r.first_shared_at > s.at)"
        )
        self.sql(
            f"""
            WITH s AS (
              SELECT s.merchant_id, p.livemode, s.program_id, s.participant_id, min(s.created_at) AS at
              FROM {{share}} s JOIN {{participant}} p ON p.id = s.participant_id
              WHERE {where} GROUP BY 1, 2, 3, 4
            ),
            old AS (
              SELECT r.id, r.merchant_id, r.livemode, r.program_id, r.variant_id, r.joined_day,
                     r.first_shared_at IS NOT NULL AS shared, r.first_shared_day
              FROM {{referrers}} r JOIN s ON r.merchant_id = s.merchant_id AND r.livemode = s.livemode
                                        AND r.program_id = s.program_id AND r.participant_id = s.participant_id
              WHERE {condition}
            ),
            up AS (
              UPDATE {{referrers}} r SET first_shared_at = s.at, first_shared_day = {_day("s.at")}
              FROM s, {{merchant}} m
              WHERE m.id = s.merchant_id AND r.merchant_id = s.merchant_id AND r.livemode = s.livemode
                AND r.program_id = s.program_id AND r.participant_id = s.participant_id AND {condition}
              RETURNING r.id, r.merchant_id, r.livemode, r.program_id, r.variant_id, r.joined_day, true AS shared,
                        r.first_shared_day
            )
            INSERT INTO _rk_refchg
            SELECT 1, merchant_id, livemode, program_id, variant_id, joined_day, shared, first_shared_day FROM up
            UNION ALL
            SELECT -1, o.merchant_id, o.livemode, o.program_id, o.variant_id, o.joined_day, o.shared,
                   o.first_shared_day
            FROM old o JOIN up ON up.id = o.id
            """,
            params,
        )

    def customers(self) -> int:
        """Recount each touched customer over their lifetime, recording the change to the cohorts they count in."""
        # Step by step through analysed temp tables: one statement of CTEs leaves PostgreSQL guessing row counts
        # (and picking nested loops over 100,000 customers).
        booked = _booked()
        self.sql(
            f"""
            DROP TABLE IF EXISTS _rk_ck, _rk_co, _rk_cf;
            CREATE TEMP TABLE _rk_ck ON COMMIT DROP AS
            SELECT DISTINCT merchant_id, livemode, customer_key,
                   CASE WHEN left(customer_key, 2) = 'x:' THEN substr(customer_key, 3) END AS ext,
                   CASE WHEN left(customer_key, 2) = 'e:' THEN substr(customer_key, 3) END AS email
            FROM _rk_customers;
            ANALYZE _rk_ck;
            CREATE TEMP TABLE _rk_co ON COMMIT DROP AS
            SELECT t.merchant_id, t.livemode, t.customer_key, c.id, c.occurred_at,
                   {booked["currency"]}::varchar(3) AS currency, c.status, c.program_id, c.referral_id,
                   {booked["net"]} AS net
            FROM _rk_ck t JOIN {{conversion}} c ON c.merchant_id = t.merchant_id AND c.livemode = t.livemode
                                             AND c.customer_external_id = t.ext
            WHERE t.ext IS NOT NULL;
            INSERT INTO _rk_co
            SELECT t.merchant_id, t.livemode, t.customer_key, c.id, c.occurred_at, {booked["currency"]}, c.status,
                   c.program_id, c.referral_id, {booked["net"]}
            FROM _rk_ck t JOIN {{conversion}} c ON c.merchant_id = t.merchant_id AND c.livemode = t.livemode
                                             AND c.customer_email_normalized = t.email
            WHERE t.email IS NOT NULL AND c.customer_external_id IS NULL;
            ANALYZE _rk_co;
            CREATE TEMP TABLE _rk_cf ON COMMIT DROP AS
            SELECT DISTINCT ON (merchant_id, livemode, customer_key) merchant_id, livemode, customer_key,
                   occurred_at, currency, status, program_id, referral_id, 0::bigint AS orders, 0::numeric AS revenue
            FROM _rk_co ORDER BY merchant_id, livemode, customer_key, occurred_at, id;
            ANALYZE _rk_cf;
            UPDATE _rk_cf f SET orders = a.orders, revenue = a.revenue
            FROM (
              SELECT o.merchant_id, o.livemode, o.customer_key, count(*) AS orders, sum(o.net) AS revenue
              FROM _rk_co o JOIN _rk_cf f ON f.merchant_id = o.merchant_id AND f.livemode = o.livemode
                                          AND f.customer_key = o.customer_key AND f.currency = o.currency
              GROUP BY 1, 2, 3
            ) AS a
            WHERE a.merchant_id = f.merchant_id AND a.livemode = f.livemode AND a.customer_key = f.customer_key;
            ANALYZE _rk_cf;
            """
        )
        self.sql(
            f"""
            WITH t AS (SELECT merchant_id, livemode, customer_key FROM _rk_ck),
            old AS (
              SELECT cs.id, cs.merchant_id, cs.livemode, cs.program_id, cs.variant_id, cs.currency, cs.first_day,
                     cs.referred, cs.orders, cs.revenue
              FROM {{customers}} cs JOIN t ON cs.merchant_id = t.merchant_id AND cs.livemode = t.livemode
                                           AND cs.customer_key = t.customer_key
            ),
            up AS (
              INSERT INTO {{customers}} (merchant_id, livemode, customer_key, currency, first_order_at, first_day,
                                        referred, program_id, variant_id, orders, revenue)
              SELECT f.merchant_id, f.livemode, f.customer_key, f.currency, f.occurred_at, {_day("f.occurred_at")},
                     f.status = 'attributed',
                     CASE WHEN f.status = 'attributed' THEN f.program_id END,
                     CASE WHEN f.status = 'attributed' THEN r.variant_id END,
                     f.orders, f.revenue
              FROM _rk_cf f
              JOIN {{merchant}} m ON m.id = f.merchant_id
              LEFT JOIN {{referral}} r ON r.id = f.referral_id
              ON CONFLICT ON CONSTRAINT customer_stats_unique_key DO UPDATE SET
                currency = EXCLUDED.currency, first_order_at = EXCLUDED.first_order_at,
                first_day = EXCLUDED.first_day, referred = EXCLUDED.referred, program_id = EXCLUDED.program_id,
                variant_id = EXCLUDED.variant_id, orders = EXCLUDED.orders, revenue = EXCLUDED.revenue
              WHERE ({{customers}}.currency, {{customers}}.first_order_at, {{customers}}.referred,
                     {{customers}}.program_id, {{customers}}.variant_id, {{customers}}.orders, {{customers}}.revenue)
                IS DISTINCT FROM (EXCLUDED.currency, EXCLUDED.first_order_at, EXCLUDED.referred,
                     EXCLUDED.program_id, EXCLUDED.variant_id, EXCLUDED.orders, EXCLUDED.revenue)
              RETURNING id, merchant_id, livemode, program_id, variant_id, currency, first_day, referred, orders,
                        revenue
            )
            INSERT INTO _rk_custchg
            SELECT 1, merchant_id, livemode, program_id, variant_id, currency, first_day, referred, orders, revenue
            FROM up
            UNION ALL
            SELECT -1, o.merchant_id, o.livemode, o.program_id, o.variant_id, o.currency, o.first_day, o.referred,
                   o.orders, o.revenue
            FROM old o JOIN up ON up.id = o.id
            """
        )
        self.cur.execute(
            "SELECT count(*) FROM (SELECT DISTINCT merchant_id, livemode, customer_key FROM _rk_customers) t"
        )
        return self.cur.fetchone()[0]

    def apply_changes(self) -> None:
        """Apply the recorded ReferrerStats / CustomerStats changes to the days not recounted in full this run."""
        daily_cols = DERIVED_DAILY_COLUMNS
        zeros = ", ".join("'{{}}'::jsonb" if c in JSON_COLUMNS else "0" for c in DAILY_COLUMNS if c not in daily_cols)
        others = ", ".join(c for c in DAILY_COLUMNS if c not in daily_cols)
        self.sql(
            f"""
            CREATE TEMP TABLE _rk_ddelta ON COMMIT DROP AS
            SELECT merchant_id, livemode, program_id, variant_id, day,
                   sum(participants_joined) AS participants_joined, sum(joined_and_shared) AS joined_and_shared,
                   sum(first_shares) AS first_shares, sum(cohort_customers) AS cohort_customers,
                   sum(cohort_repeaters) AS cohort_repeaters, sum(cohort_revenue) AS cohort_revenue
            FROM (
              SELECT merchant_id, livemode, program_id, variant_id, joined_day AS day, sign AS participants_joined,
                     sign * shared::int AS joined_and_shared, 0 AS first_shares, 0 AS cohort_customers,
                     0 AS cohort_repeaters, 0::numeric AS cohort_revenue
              FROM _rk_refchg
              UNION ALL
              SELECT merchant_id, livemode, program_id, variant_id, first_shared_day, 0, 0, sign, 0, 0, 0
              FROM _rk_refchg WHERE first_shared_day IS NOT NULL
              UNION ALL
              SELECT merchant_id, livemode, program_id, variant_id, first_day, 0, 0, 0, sign,
                     sign * (orders >= 2)::int, sign * revenue
              FROM _rk_custchg WHERE referred AND program_id IS NOT NULL
            ) AS changes
            WHERE NOT EXISTS (
              SELECT 1 FROM _rk_bounds b WHERE b.merchant_id = changes.merchant_id AND b.livemode = changes.livemode
                AND b.program_id = changes.program_id AND b.day = changes.day
            )
            AND EXISTS (SELECT 1 FROM {{program}} p WHERE p.id = changes.program_id)
            GROUP BY 1, 2, 3, 4, 5;
            DELETE FROM _rk_ddelta
            WHERE (participants_joined, joined_and_shared, first_shares, cohort_customers, cohort_repeaters)
                  = (0, 0, 0, 0, 0) AND cohort_revenue = 0;
            UPDATE {{daily}} t SET {", ".join(f"{c} = GREATEST(t.{c} + d.{c}, 0)" for c in daily_cols)},
                   updated_at = now()
            FROM _rk_ddelta d
            WHERE t.merchant_id = d.merchant_id AND t.livemode = d.livemode AND t.program_id = d.program_id
              AND t.variant_id IS NOT DISTINCT FROM d.variant_id AND t.day = d.day;
            INSERT INTO {{daily}} (merchant_id, livemode, program_id, variant_id, day, {", ".join(daily_cols)},
                                   {others}, updated_at)
            SELECT d.merchant_id, d.livemode, d.program_id, d.variant_id, d.day,
                   {", ".join(f"GREATEST(d.{c}, 0)" for c in daily_cols)}, {zeros}, now()
            FROM _rk_ddelta d
            WHERE NOT EXISTS (
              SELECT 1 FROM {{daily}} t
              WHERE t.merchant_id = d.merchant_id AND t.livemode = d.livemode AND t.program_id = d.program_id
                AND t.variant_id IS NOT DISTINCT FROM d.variant_id AND t.day = d.day
            );
            DROP TABLE _rk_ddelta;

            CREATE TEMP TABLE _rk_sdelta ON COMMIT DROP AS
            SELECT merchant_id, livemode, currency, first_day AS day,
                   sum(sign) AS new_customers, sum(sign * referred::int) AS referred_new_customers,
                   sum(sign * (NOT referred)::int) AS other_cohort_customers,
                   sum(sign * (NOT referred AND orders >= 2)::int) AS other_cohort_repeaters,
                   sum(CASE WHEN referred THEN 0 ELSE sign * revenue END) AS other_cohort_revenue
            FROM _rk_custchg c
            WHERE NOT EXISTS (
              SELECT 1 FROM _rk_shop_bounds b WHERE b.merchant_id = c.merchant_id AND b.livemode = c.livemode
                AND b.currency = c.currency AND b.day = c.first_day
            )
            GROUP BY 1, 2, 3, 4;
            UPDATE {{shop}} t SET {", ".join(f"{c} = GREATEST(t.{c} + d.{c}, 0)" for c in SHOP_DERIVED)},
                   updated_at = now()
            FROM _rk_sdelta d
            WHERE t.merchant_id = d.merchant_id AND t.livemode = d.livemode AND t.currency = d.currency
              AND t.day = d.day;
            INSERT INTO {{shop}} (merchant_id, livemode, currency, day, {", ".join(SHOP_DERIVED)},
                                  {", ".join(c for c in SHOP_COLUMNS if c not in SHOP_DERIVED)}, updated_at)
            SELECT d.merchant_id, d.livemode, d.currency, d.day,
                   {", ".join(f"GREATEST(d.{c}, 0)" for c in SHOP_DERIVED)},
                   {", ".join("0" for c in SHOP_COLUMNS if c not in SHOP_DERIVED)}, now()
            FROM _rk_sdelta d
            WHERE NOT EXISTS (
              SELECT 1 FROM {{shop}} t WHERE t.merchant_id = d.merchant_id AND t.livemode = d.livemode
                AND t.currency = d.currency AND t.day = d.day
            );
            DROP TABLE _rk_sdelta;
            """
        )

    # --- recounting touched days -------------------------------------------------------------------------------------

    def bounds(self) -> int:
        self.sql(
            """
            CREATE TEMP TABLE _rk_bounds ON COMMIT DROP AS
            SELECT DISTINCT k.merchant_id, k.livemode, k.program_id, k.day,
                   (k.day::timestamp AT TIME ZONE m.timezone) AS lo,
                   ((k.day + 1)::timestamp AT TIME ZONE m.timezone) AS hi
            FROM _rk_days k
            JOIN {merchant} m ON m.id = k.merchant_id
            JOIN {program} p ON p.id = k.program_id AND p.merchant_id = k.merchant_id
            WHERE k.day IS NOT NULL;
            ANALYZE _rk_bounds;
            CREATE TEMP TABLE _rk_shop_bounds ON COMMIT DROP AS
            SELECT DISTINCT k.merchant_id, k.livemode, k.currency, k.day,
                   (k.day::timestamp AT TIME ZONE m.timezone) AS lo,
                   ((k.day + 1)::timestamp AT TIME ZONE m.timezone) AS hi
            FROM _rk_shop k JOIN {merchant} m ON m.id = k.merchant_id
            WHERE k.day IS NOT NULL;
            ANALYZE _rk_shop_bounds;
            """
        )
        self.cur.execute("SELECT (SELECT count(*) FROM _rk_bounds), (SELECT count(*) FROM _rk_shop_bounds)")
        days, shop = self.cur.fetchone()
        return days, shop

    def daily(self) -> None:
        ints = ", ".join(f"{c} bigint NOT NULL DEFAULT 0" for c in COUNT_COLUMNS)
        money = ", ".join(f"{c} numeric NOT NULL DEFAULT 0" for c in MONEY_COLUMNS)
        key = "k.merchant_id, k.livemode, k.program_id"
        self.sql(
            f"""
            CREATE TEMP TABLE _rk_fresh (merchant_id bigint, livemode boolean, program_id bigint, variant_id bigint,
              day date, {ints}, {money}, shares_by_channel jsonb, time_to_purchase jsonb) ON COMMIT DROP;

            -- clicks (not counting bots), unique visitors (IP hash, else each click), bot clicks
            INSERT INTO _rk_fresh (merchant_id, livemode, program_id, variant_id, day, clicks, unique_visitors,
                                   bot_clicks)
            SELECT {key}, rc.variant_id, k.day,
                   count(*) FILTER (WHERE NOT c.is_bot),
                   count(DISTINCT COALESCE(NULLIF(c.ip_hash, ''), c.click_id::text)) FILTER (WHERE NOT c.is_bot),
                   count(*) FILTER (WHERE c.is_bot)
            FROM _rk_bounds k
            JOIN {{click}} c ON c.merchant_id = k.merchant_id AND c.program_id = k.program_id
                            AND c.occurred_at >= k.lo AND c.occurred_at < k.hi
            JOIN {{code}} rc ON rc.id = c.code_id
            WHERE c.livemode = k.livemode AND k.lo >= %(clicks_from)s
            GROUP BY 1, 2, 3, 4, 5;
            -- a day (partly) before the clicks that retention dropped keeps the click numbers counted before
            INSERT INTO _rk_fresh (merchant_id, livemode, program_id, variant_id, day, clicks, unique_visitors,
                                   bot_clicks)
            SELECT d.merchant_id, d.livemode, d.program_id, d.variant_id, d.day, d.clicks, d.unique_visitors,
                   d.bot_clicks
            FROM _rk_bounds k
            JOIN {{daily}} d ON d.merchant_id = k.merchant_id AND d.livemode = k.livemode
                             AND d.program_id = k.program_id AND d.day = k.day
            WHERE k.lo < %(clicks_from)s AND (d.clicks, d.unique_visitors, d.bot_clicks) <> (0, 0, 0);

            -- participants who joined (and of them, who shared since), first-time sharers
            INSERT INTO _rk_fresh (merchant_id, livemode, program_id, variant_id, day, participants_joined,
                                   joined_and_shared)
            SELECT {key}, s.variant_id, k.day, count(*), count(*) FILTER (WHERE s.first_shared_at IS NOT NULL)
            FROM _rk_bounds k
            JOIN {{referrers}} s ON s.merchant_id = k.merchant_id AND s.livemode = k.livemode
                                 AND s.program_id = k.program_id AND s.joined_day = k.day
            GROUP BY 1, 2, 3, 4, 5;
            INSERT INTO _rk_fresh (merchant_id, livemode, program_id, variant_id, day, first_shares)
            SELECT {key}, s.variant_id, k.day, count(*)
            FROM _rk_bounds k
            JOIN {{referrers}} s ON s.merchant_id = k.merchant_id AND s.livemode = k.livemode
                                 AND s.program_id = k.program_id AND s.first_shared_day = k.day
            GROUP BY 1, 2, 3, 4, 5;

            -- invites and shares (the variant is the sharer's, from their code in the program)
            INSERT INTO _rk_fresh (merchant_id, livemode, program_id, variant_id, day, invites_sent)
            SELECT {key}, rc.variant_id, k.day, count(*)
            FROM _rk_bounds k
            JOIN {{invite}} i ON i.merchant_id = k.merchant_id AND i.program_id = k.program_id
                             AND i.created_at >= k.lo AND i.created_at < k.hi
            JOIN {{code}} rc ON rc.merchant_id = i.merchant_id AND rc.program_id = i.program_id
                            AND rc.participant_id = i.participant_id
            WHERE rc.livemode = k.livemode
            GROUP BY 1, 2, 3, 4, 5;
            INSERT INTO _rk_fresh (merchant_id, livemode, program_id, variant_id, day, shares, shares_by_channel)
            SELECT merchant_id, livemode, program_id, variant_id, day, sum(n), jsonb_object_agg(channel, n)
            FROM (
              SELECT {key}, rc.variant_id, k.day, s.channel, count(*) AS n
              FROM _rk_bounds k
              JOIN {{share}} s ON s.merchant_id = k.merchant_id AND s.program_id = k.program_id
                              AND s.created_at >= k.lo AND s.created_at < k.hi
              JOIN {{code}} rc ON rc.merchant_id = s.merchant_id AND rc.program_id = s.program_id
                              AND rc.participant_id = s.participant_id
              WHERE rc.livemode = k.livemode
              GROUP BY 1, 2, 3, 4, 5, 6
            ) AS by_channel
            GROUP BY 1, 2, 3, 4, 5;

            -- referred friends (by the day their referral opened)
            INSERT INTO _rk_fresh (merchant_id, livemode, program_id, variant_id, day, signups, referrals_rejected)
            SELECT {key}, r.variant_id, k.day,
                   count(*) FILTER (WHERE r.status <> 'rejected'), count(*) FILTER (WHERE r.status = 'rejected')
            FROM _rk_bounds k
            JOIN {{referral}} r ON r.merchant_id = k.merchant_id AND r.program_id = k.program_id
                               AND r.created_at >= k.lo AND r.created_at < k.hi
            WHERE r.livemode = k.livemode
            GROUP BY 1, 2, 3, 4, 5;

            -- referred orders (by the day they were placed), revenue net of refunds, first purchases rewarded
            INSERT INTO _rk_fresh (merchant_id, livemode, program_id, variant_id, day, attributed_orders,
              rejected_orders, referred_new_customers, rewarded, referred_revenue_gross, referred_refunds,
              referred_revenue)
            SELECT {key}, r.variant_id, k.day,
                   count(*) FILTER (WHERE c.status = 'attributed'),
                   count(*) FILTER (WHERE c.status = 'rejected'),
                   count(*) FILTER (WHERE c.status = 'attributed' AND c.is_new_customer),
                   count(*) FILTER (WHERE c.status = 'attributed' AND c.is_new_customer AND EXISTS (
                     SELECT 1 FROM {{reward}} w WHERE w.merchant_id = c.merchant_id AND w.conversion_id = c.id
                       AND w.status IN %(good)s)),
                   COALESCE(sum({_booked()["amount"]}) FILTER (WHERE c.status = 'attributed'), 0),
                   COALESCE(sum({_booked()["refunded"]}) FILTER (WHERE c.status = 'attributed'), 0),
                   COALESCE(sum({_booked()["net"]}) FILTER (WHERE c.status = 'attributed'), 0)
            FROM _rk_bounds k
            JOIN {{conversion}} c ON c.merchant_id = k.merchant_id AND c.program_id = k.program_id
                                 AND c.occurred_at >= k.lo AND c.occurred_at < k.hi
            JOIN {{referral}} r ON r.id = c.referral_id
            WHERE c.livemode = k.livemode
            GROUP BY 1, 2, 3, 4, 5;

            -- time from the click (or sign-up) that opened the window to the first purchase: a histogram
            INSERT INTO _rk_fresh (merchant_id, livemode, program_id, variant_id, day, time_to_purchase)
            SELECT merchant_id, livemode, program_id, variant_id, day, jsonb_object_agg(bucket::text, n)
            FROM (
              SELECT {key}, r.variant_id, k.day,
                     width_bucket(extract(epoch FROM c.occurred_at - r.touched_at)::float8, %(edges)s::float8[])
                       AS bucket,
                     count(*) AS n
              FROM _rk_bounds k
              JOIN {{conversion}} c ON c.merchant_id = k.merchant_id AND c.program_id = k.program_id
                                   AND c.occurred_at >= k.lo AND c.occurred_at < k.hi
              JOIN {{referral}} r ON r.id = c.referral_id
              WHERE c.livemode = k.livemode AND c.status = 'attributed' AND c.is_new_customer
              GROUP BY 1, 2, 3, 4, 5, 6
            ) AS buckets
            GROUP BY 1, 2, 3, 4, 5;

            -- customers acquired this day through the program, over their lifetime
            INSERT INTO _rk_fresh (merchant_id, livemode, program_id, variant_id, day, cohort_customers,
                                   cohort_repeaters, cohort_revenue)
            SELECT {key}, cs.variant_id, k.day, count(*), count(*) FILTER (WHERE cs.orders >= 2), sum(cs.revenue)
            FROM _rk_bounds k
            JOIN {{customers}} cs ON cs.merchant_id = k.merchant_id AND cs.livemode = k.livemode
                                  AND cs.program_id = k.program_id AND cs.first_day = k.day
            WHERE cs.referred
            GROUP BY 1, 2, 3, 4, 5;

            -- rewards (by the day they were created): the cost in money by status; what refunds took back from a
            -- used coupon counts as clawed back
            INSERT INTO _rk_fresh (merchant_id, livemode, program_id, variant_id, day, rewards, cost_pending,
              cost_approved, cost_issued, cost_redeemed, cost_rejected, cost_voided, cost_clawed_back)
            SELECT {key}, COALESCE(r.variant_id, rc.variant_id), k.day, count(*),
                   {
                ", ".join(
                    f"COALESCE(sum(w.value) FILTER (WHERE w.unit = 'money' AND w.status = '{s}'), 0)"
                    for s in ("pending", "approved", "issued")
                )
            },
                   COALESCE(sum(w.value - w.taken_back) FILTER (WHERE w.unit = 'money' AND w.status = 'redeemed'), 0),
                   {
                ", ".join(
                    f"COALESCE(sum(w.value) FILTER (WHERE w.unit = 'money' AND w.status = '{s}'), 0)"
                    for s in ("rejected", "voided")
                )
            },
                   COALESCE(sum(w.value) FILTER (WHERE w.unit = 'money' AND w.status = 'clawed_back'), 0)
                     + COALESCE(sum(w.taken_back) FILTER (WHERE w.unit = 'money' AND w.status = 'redeemed'), 0)
            FROM _rk_bounds k
            JOIN {{reward}} w ON w.merchant_id = k.merchant_id AND w.program_id = k.program_id
                             AND w.created_at >= k.lo AND w.created_at < k.hi
            LEFT JOIN {{referral}} r ON r.id = w.referral_id
            LEFT JOIN {{code}} rc ON rc.merchant_id = w.merchant_id AND rc.program_id = w.program_id
                                 AND rc.participant_id = w.participant_id
            WHERE w.livemode = k.livemode
            GROUP BY 1, 2, 3, 4, 5;

            """,
            {"good": GOOD_REWARD_STATUSES, "edges": TTP_EDGES, "clicks_from": self.clicks_from()},
        )
        if self.fraud:
            self.sql(
                f"""
            -- fraud (by the day the scorer looked): flagged by the scorer, rejected in the end
            INSERT INTO _rk_fresh (merchant_id, livemode, program_id, variant_id, day, fraud_flagged, fraud_rejected)
            SELECT {key}, r.variant_id, k.day,
                   count(*) FILTER (WHERE a.auto_decision <> 'approve'), count(*) FILTER (WHERE a.decision = 'reject')
            FROM _rk_bounds k
            JOIN {{assessment}} a ON a.merchant_id = k.merchant_id AND a.decision IN ('approve', 'review', 'reject')
                                 AND a.created_at >= k.lo AND a.created_at < k.hi
            JOIN {{referral}} r ON r.id = a.referral_id
            WHERE a.program_id = k.program_id AND a.livemode = k.livemode
            GROUP BY 1, 2, 3, 4, 5;
                """
            )
        self._upsert(
            target="{daily}",
            fresh="_rk_fresh",
            bounds="_rk_bounds",
            key=["merchant_id", "livemode", "program_id", "variant_id", "day"],
            bound_key=["merchant_id", "livemode", "program_id", "day"],
            columns=DAILY_COLUMNS,
            constraint="daily_stats_unique_key",
            json_columns=JSON_COLUMNS,
        )

    def referrer_days(self) -> None:
        key = "k.merchant_id, k.livemode, k.program_id"
        self.sql(
            f"""
            CREATE TEMP TABLE _rk_rfresh (merchant_id bigint, livemode boolean, program_id bigint,
              participant_id bigint, day date, signups bigint NOT NULL DEFAULT 0, orders bigint NOT NULL DEFAULT 0,
              new_customers bigint NOT NULL DEFAULT 0, revenue numeric NOT NULL DEFAULT 0) ON COMMIT DROP;
            INSERT INTO _rk_rfresh (merchant_id, livemode, program_id, participant_id, day, signups)
            SELECT {key}, r.referrer_id, k.day, count(*)
            FROM _rk_bounds k
            JOIN {{referral}} r ON r.merchant_id = k.merchant_id AND r.program_id = k.program_id
                               AND r.created_at >= k.lo AND r.created_at < k.hi
            WHERE r.livemode = k.livemode AND r.status <> 'rejected'
            GROUP BY 1, 2, 3, 4, 5;
            INSERT INTO _rk_rfresh (merchant_id, livemode, program_id, participant_id, day, orders, new_customers,
                                    revenue)
            SELECT {key}, r.referrer_id, k.day, count(*),
                   count(*) FILTER (WHERE c.is_new_customer AND r.status <> 'rejected'),
                   sum({_booked()["net"]})
            FROM _rk_bounds k
            JOIN {{conversion}} c ON c.merchant_id = k.merchant_id AND c.program_id = k.program_id
                                 AND c.occurred_at >= k.lo AND c.occurred_at < k.hi
            JOIN {{referral}} r ON r.id = c.referral_id
            WHERE c.livemode = k.livemode AND c.status = 'attributed'
            GROUP BY 1, 2, 3, 4, 5;
            CREATE TEMP TABLE _rk_people ON COMMIT DROP AS
            SELECT d.merchant_id, d.livemode, d.program_id, d.participant_id
            FROM _rk_bounds k JOIN {{referrer_daily}} d ON d.merchant_id = k.merchant_id AND d.livemode = k.livemode
                                                      AND d.program_id = k.program_id AND d.day = k.day
            UNION SELECT merchant_id, livemode, program_id, participant_id FROM _rk_rfresh;
            """
        )
        self._upsert(
            target="{referrer_daily}",
            fresh="_rk_rfresh",
            bounds="_rk_bounds",
            key=["merchant_id", "livemode", "program_id", "participant_id", "day"],
            bound_key=["merchant_id", "livemode", "program_id", "day"],
            columns=REFERRER_COLUMNS,
            constraint="referrer_daily_unique_key",
        )
        sums = ", ".join(f"COALESCE(sum(d.{c}), 0) AS {c}" for c in REFERRER_COLUMNS)
        self.sql(
            f"""
            UPDATE {{referrers}} s SET {", ".join(f"{c} = t.{c}" for c in REFERRER_COLUMNS)}
            FROM (
              SELECT p.merchant_id, p.livemode, p.program_id, p.participant_id, {sums}
              FROM _rk_people p
              LEFT JOIN {{referrer_daily}} d ON d.merchant_id = p.merchant_id AND d.livemode = p.livemode
                                             AND d.program_id = p.program_id AND d.participant_id = p.participant_id
              GROUP BY 1, 2, 3, 4
            ) AS t
            WHERE s.merchant_id = t.merchant_id AND s.livemode = t.livemode AND s.program_id = t.program_id
              AND s.participant_id = t.participant_id
              AND ({", ".join(f"s.{c}" for c in REFERRER_COLUMNS)})
                  IS DISTINCT FROM ({", ".join(f"t.{c}" for c in REFERRER_COLUMNS)})
            """
        )

    def shop(self) -> None:
        ints = ", ".join(f"{c} bigint NOT NULL DEFAULT 0" for c in SHOP_COUNT_COLUMNS)
        money = ", ".join(f"{c} numeric NOT NULL DEFAULT 0" for c in SHOP_MONEY_COLUMNS)
        key = "k.merchant_id, k.livemode, k.currency, k.day"
        booked = _booked()
        self.sql(
            f"""
            CREATE TEMP TABLE _rk_sfresh (merchant_id bigint, livemode boolean, currency varchar(3), day date,
              {ints}, {money}) ON COMMIT DROP;
            INSERT INTO _rk_sfresh (merchant_id, livemode, currency, day, orders, revenue_gross, refunds, revenue,
                                    attributed_orders, attributed_revenue)
            SELECT {key}, count(*), sum({booked["amount"]}), sum({booked["refunded"]}), sum({booked["net"]}),
                   count(*) FILTER (WHERE c.status = 'attributed'),
                   COALESCE(sum({booked["net"]}) FILTER (WHERE c.status = 'attributed'), 0)
            FROM _rk_shop_bounds k
            JOIN {{conversion}} c ON c.merchant_id = k.merchant_id AND c.livemode = k.livemode
                                 AND c.occurred_at >= k.lo AND c.occurred_at < k.hi
            WHERE {booked["currency"]} = k.currency
            GROUP BY 1, 2, 3, 4;
            INSERT INTO _rk_sfresh (merchant_id, livemode, currency, day, new_customers, referred_new_customers,
                                    other_cohort_customers, other_cohort_repeaters, other_cohort_revenue)
            SELECT {key}, count(*), count(*) FILTER (WHERE cs.referred), count(*) FILTER (WHERE NOT cs.referred),
                   count(*) FILTER (WHERE NOT cs.referred AND cs.orders >= 2),
                   COALESCE(sum(cs.revenue) FILTER (WHERE NOT cs.referred), 0)
            FROM _rk_shop_bounds k
            JOIN {{customers}} cs ON cs.merchant_id = k.merchant_id AND cs.livemode = k.livemode
                                  AND cs.currency = k.currency AND cs.first_day = k.day
            GROUP BY 1, 2, 3, 4;
            """
        )
        self._upsert(
            target="{shop}",
            fresh="_rk_sfresh",
            bounds="_rk_shop_bounds",
            key=["merchant_id", "livemode", "currency", "day"],
            bound_key=["merchant_id", "livemode", "currency", "day"],
            columns=SHOP_COLUMNS,
            constraint="shop_stats_unique_key",
        )

    def _upsert(
        self,
        *,
        target: str,
        fresh: str,
        bounds: str,
        key: list[str],
        bound_key: list[str],
        columns: list[str],
        constraint: str,
        json_columns: Iterable[str] = (),
    ) -> None:
        """Sum the fresh partial rows per key, write them (only rows whose numbers changed), and delete the rows of
        touched keys that have nothing left."""
        json_columns = set(json_columns)

        def total(column: str) -> str:
            if column in json_columns:
                # One source fills each JSON column, at most one partial row per key.
                return f"COALESCE((array_agg({column}) FILTER (WHERE {column} IS NOT NULL))[1], '{{{{}}}}'::jsonb)"
            return f"sum({column})"

        keys = ", ".join(key)
        cols = ", ".join(columns)
        matches = " AND ".join(f"t.{c} IS NOT DISTINCT FROM f.{c}" for c in key)
        in_bounds = " AND ".join(f"t.{c} = b.{c}" for c in bound_key)
        stamped = target in ("{daily}", "{shop}")
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns) + (
            ", updated_at = EXCLUDED.updated_at" if stamped else ""
        )
        changed = (
            f"({', '.join(f't.{c}' for c in columns)}) IS DISTINCT FROM ({', '.join(f'EXCLUDED.{c}' for c in columns)})"
        )
        self.sql(
            f"""
            CREATE TEMP TABLE _rk_sum ON COMMIT DROP AS
            SELECT {keys}, {", ".join(f"{total(c)} AS {c}" for c in columns)}
            FROM {fresh} GROUP BY {keys};
            DELETE FROM {target} t USING {bounds} b
            WHERE {in_bounds} AND NOT EXISTS (SELECT 1 FROM _rk_sum f WHERE {matches});
            INSERT INTO {target} AS t ({keys}, {cols}{", updated_at" if stamped else ""})
            SELECT {keys}, {cols}{", now()" if stamped else ""} FROM _rk_sum
            ON CONFLICT ON CONSTRAINT {constraint} DO UPDATE SET {sets}
            WHERE {changed};
            DROP TABLE _rk_sum;
            """
        )

    def recount(self) -> tuple[int, int]:
        days, shop = self.bounds()
        self.daily()
        self.referrer_days()
        self.shop()
        self.apply_changes()
        for name in ("_rk_bounds", "_rk_shop_bounds", "_rk_fresh", "_rk_rfresh", "_rk_people", "_rk_sfresh"):
            self.cur.execute(f"DROP TABLE IF EXISTS {name}")
        return days, shop


# --- watermarks -------------------------------------------------------------------------------------------------------


def _current_marks(cursor) -> dict[str, int]:
    present = _present(cursor)
    sources = [(name, app, model) for name, app, model in SOURCES if name in present]
    parts = [f"(SELECT COALESCE(max(id), 0) FROM {_table(app, model)}) AS {name}" for name, app, model in sources]
    cursor.execute("SELECT " + ", ".join(parts))
    row = cursor.fetchone()
    return {name: int(value) for (name, _a, _m), value in zip(sources, row, strict=True)}


def _state_checkpoints(cursor) -> tuple[datetime | None, list[dict]]:

    cursor.execute(
        f"SELECT last_run_at, checkpoints FROM {RollupState._meta.db_table} "
        "WHERE last_run_at IS NOT NULL ORDER BY last_run_at LIMIT 1"
    )
    row = cursor.fetchone()
    if row is None:
        return None, []
    checkpoints = json.loads(row[1]) if isinstance(row[1], str) else row[1]  # Django leaves jsonb as text
    return row[0], checkpoints if isinstance(checkpoints, list) else []


def _start_marks(previous_run: datetime | None, checkpoints: list[dict]) -> dict[str, int]:
    """The ids to read from: a checkpoint taken at least LOOKBACK before the previous run (else the oldest kept)."""
    if previous_run is None or not checkpoints:
        return {}
    ordered = sorted(checkpoints, key=lambda c: c["at"])
    limit = (previous_run - LOOKBACK).timestamp()
    older = [c for c in ordered if c["at"] <= limit]
    return (older[-1] if older else ordered[0])["marks"]


def _kept_checkpoints(checkpoints: list[dict], new: dict, now: datetime) -> list[dict]:
    """The new checkpoint, those younger than 2 x LOOKBACK, and the newest one older than that."""
    ordered = sorted([*checkpoints, new], key=lambda c: c["at"])
    limit = (now - 2 * LOOKBACK).timestamp()
    young = [c for c in ordered if c["at"] >= limit]
    old = [c for c in ordered if c["at"] < limit]
    return old[-1:] + young


def _save_state(cursor, *, run_at: datetime, checkpoints: list[dict], keys: int, seconds: float) -> None:
    """Every merchant's state row gets the same checkpoints (one pass reads all merchants)."""

    cursor.execute(
        f"""
        INSERT INTO {RollupState._meta.db_table} AS s (merchant_id, last_run_at, checkpoints, last_keys, last_seconds)
        SELECT m.id, %(at)s, %(cp)s::jsonb, %(keys)s, %(seconds)s FROM {_table("tenancy", "Merchant")} m
        ON CONFLICT ON CONSTRAINT rollup_state_one_per_merchant DO UPDATE SET
          last_run_at = EXCLUDED.last_run_at, checkpoints = EXCLUDED.checkpoints, last_keys = EXCLUDED.last_keys,
          last_seconds = EXCLUDED.last_seconds
        """,
        {"at": run_at, "cp": json.dumps(checkpoints), "keys": keys, "seconds": seconds},
    )


def rollup_clicks_counted_through(cursor) -> int:
    """The click id up to which every click is in the rollups for good: the next incremental run starts after it
    (0 before the first run). Read under the rollup's lock (LOCK_KEY) to keep it true while acting on it."""
    previous_run, checkpoints = _state_checkpoints(cursor)
    return int(_start_marks(previous_run, checkpoints).get("click", 0))


def _locked(cursor) -> bool:
    cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [LOCK_KEY])
    return bool(cursor.fetchone()[0])


# --- services ---------------------------------------------------------------------------------------------------------


def rollup_incremental() -> RollupResult:
    """Recount every (program, day) and (shop, currency, day) that raw rows touched since the last run.

    Safe to run at any time and any number of times: a run that finds nothing new changes nothing, and a run that
    overlaps another returns at once (ran=False).
    """
    started = time.monotonic()
    run_at = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        if not _locked(cursor):
            return RollupResult(ran=False)
        previous_run, checkpoints = _state_checkpoints(cursor)
        hi = _current_marks(cursor)
        lo = _start_marks(previous_run, checkpoints)
        engine = _Rollup(cursor)
        engine.create_key_tables()
        engine.discover(lo, hi)
        customers = engine.customers()
        days, shop = engine.recount()
        seconds = time.monotonic() - started
        new = {"at": run_at.timestamp(), "marks": hi}
        _save_state(
            cursor, run_at=run_at, checkpoints=_kept_checkpoints(checkpoints, new, run_at), keys=days, seconds=seconds
        )
    result = RollupResult(keys=days, shop_keys=shop, customers=customers, seconds=seconds, watermarks=hi)
    logger.info("rollup: %s program days, %s shop days, %s customers in %.2fs", days, shop, customers, seconds)
    return result


def _merchant_days(merchant, since: date, until: date) -> list[date]:
    return [since + timedelta(days=i) for i in range((until - since).days + 1)]


def rollup_backfill(
    *,
    since: date,
    merchants: list | None = None,
    chunk_days: int = 31,
    progress: Callable[[int, int], None] | None = None,
) -> RollupResult:
    """Recount everything from `since` (a day in each merchant's time zone) to today, for some or all merchants.

    Per-customer and per-referrer facts are recounted over all time first (they feed the cohort numbers of any
    day); then days in chunks, one transaction each, calling `progress(done, total)` after each. If the incremental
    rollup never ran, the state is initialised to the ids read at the start, so that its first run starts here.
    """

    if chunk_days < 1:
        raise ValueError(f"chunk_days must be at least 1, not {chunk_days!r}")
    started = time.monotonic()
    run_at = timezone.now()
    selected = list(merchants) if merchants is not None else list(Merchant.objects.order_by("pk"))
    ids = [m.pk for m in selected]
    if not ids:
        return RollupResult(keys=0)
    with connection.cursor() as cursor:
        marks = _current_marks(cursor)
        # Every (mode, currency) the shop has orders in, once (a backfill may read all of a merchant's orders).
        cursor.execute(
            f"SELECT DISTINCT merchant_id, livemode, {_booked()['currency']} "
            f"FROM {_table('tracking', 'Conversion')} c WHERE merchant_id = ANY(%(ids)s)",
            {"ids": ids},
        )
        found = cursor.fetchall()
    shop_keys = {
        "shop_merchants": [r[0] for r in found],
        "shop_modes": [r[1] for r in found],
        "shop_currencies": [r[2] for r in found],
    }
    result = RollupResult(watermarks=marks)
    until = max(timezone.localdate() + timedelta(days=1), since)
    days = _merchant_days(None, since, until)
    chunks = [days[i : i + chunk_days] for i in range(0, len(days), chunk_days)]
    total = len(chunks) + 1
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        engine = _Rollup(cursor)
        engine.create_key_tables()
        where = "rc.merchant_id = ANY(%(ids)s)"
        engine.referrers_from_codes(where, {"ids": ids})
        engine.first_shares("s.merchant_id = ANY(%(ids)s)", {"ids": ids}, reset=True)
        engine.sql(
            f"""
            INSERT INTO _rk_customers
            SELECT DISTINCT c.merchant_id, c.livemode, {CUSTOMER_KEY.format(c="c")}
            FROM {{conversion}} c WHERE c.merchant_id = ANY(%(ids)s) AND
              (c.customer_external_id IS NOT NULL OR c.customer_email_normalized IS NOT NULL)
            """,
            {"ids": ids},
        )
        result.customers = engine.customers()
        # The changes of days before `since` are applied here; later days are recounted in full below.
        keys, shop = engine.recount()
        result.keys += keys
        result.shop_keys += shop
    if progress:
        progress(1, total)
    for done, chunk in enumerate(chunks, start=2):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
            engine = _Rollup(cursor)
            engine.create_key_tables()
            params = {"ids": ids, "first": chunk[0], "last": chunk[-1], **shop_keys}
            engine.sql(
                """
                INSERT INTO _rk_days
                SELECT p.merchant_id, mode.livemode, p.id, d::date
                FROM {program} p
                CROSS JOIN (VALUES (true), (false)) AS mode(livemode)
                CROSS JOIN generate_series(%(first)s::date, %(last)s::date, interval '1 day') AS d
                WHERE p.merchant_id = ANY(%(ids)s);
                INSERT INTO _rk_shop
                SELECT cur.merchant_id, cur.livemode, cur.currency, d::date
                FROM unnest(%(shop_merchants)s::bigint[], %(shop_modes)s::boolean[], %(shop_currencies)s::text[])
                  AS cur(merchant_id, livemode, currency)
                CROSS JOIN generate_series(%(first)s::date, %(last)s::date, interval '1 day') AS d;
                """,
                params,
            )
            keys, shop = engine.recount()
            result.keys += keys
            result.shop_keys += shop
        if progress:
            progress(done, total)
    with transaction.atomic(), connection.cursor() as cursor:
        if not RollupState.all_merchants.filter(last_run_at__isnull=False).exists():
            checkpoint = {"at": run_at.timestamp(), "marks": marks}
            _save_state(cursor, run_at=run_at, checkpoints=[checkpoint], keys=result.keys, seconds=0.0)
    result.seconds = time.monotonic() - started
    return result
