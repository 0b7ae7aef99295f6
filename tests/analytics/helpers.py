"""Seeded random raw data (clicks, shares, invites, referrals, orders, refunds, rewards, fraud assessments) and a
brute-force recount of every rollup from the raw tables, in plain Python: the rollups must equal it."""

from __future__ import annotations

import random
import uuid
import zoneinfo
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from django.apps import apps
from django.db import connection
from django.utils import timezone

from analytics.metrics import TTP_EDGES
from analytics.models import DailyStats, ReferrerDailyStats, ShopDailyStats
from programs.models import Invite, Participant, Program, ProgramVariant, ShareEvent
from rewards.models import Reward, RewardAdjustment, RewardEvent, RewardRule
from tests.factories import ProgramFactory, join
from tracking.models import Click, Conversion, Referral, ReferralCode, Refund

GOOD = {"pending", "approved", "issued", "redeemed"}
CHANNELS = ["email", "whatsapp", "facebook", "x", "copy", "qr"]
STATUSES = ("pending", "approved", "issued", "redeemed", "rejected", "voided", "clawed_back")
COST_FIELDS = {s: f"cost_{s}" for s in STATUSES}


def ttp_bucket(seconds: float) -> int:
    """The time-to-purchase histogram bucket of a duration, in Python (the rollup's SQL uses width_bucket(seconds,
    TTP_EDGES), which numbers them the same way)."""
    bucket = 0
    for edge in TTP_EDGES:
        if seconds >= edge:
            bucket += 1
        else:
            break
    return bucket


def fraud_model():
    """The fraud app's assessment model when its table exists (it is built in parallel with analytics)."""
    try:
        model = apps.get_model("fraud", "FraudAssessment")
    except LookupError:
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [model._meta.db_table])
        return model if cursor.fetchone()[0] else None


class World:
    """A merchant's programs and people, and a seeded random stream of raw events around midnight boundaries."""

    def __init__(self, merchant, *, seed: int, start: datetime | None = None):
        self.merchant = merchant
        self.rng = random.Random(seed)
        self.start = start or datetime(2026, 3, 20, tzinfo=zoneinfo.ZoneInfo("UTC"))
        self.ab = ProgramFactory(merchant=merchant, slug=f"ab-{seed}", currency="PLN")
        self.variants = [
            ProgramVariant.objects.for_merchant(merchant).create(program=self.ab, name=name, weight=1)
            for name in ("A", "B")
        ]
        self.plain = ProgramFactory(merchant=merchant, slug=f"plain-{seed}", currency="PLN")
        self.programs = [self.ab, self.plain]
        self.rule = RewardRule.objects.for_merchant(merchant).create(
            program=self.ab, name=f"r{seed}", side="referrer", kind="amount_coupon", value=Decimal("10")
        )
        self.codes: list[ReferralCode] = []
        self.conversions: list[Conversion] = []
        self.referrals: list[Referral] = []
        self.rewards: list[Reward] = []
        self.customers = [f"c-{seed}-{i}" for i in range(12)]
        self.n = 0

    def when(self, days: float = 6) -> datetime:
        # Around midnights (UTC and Warsaw) to catch day-boundary mistakes.
        base = self.start + timedelta(days=self.rng.randint(0, int(days)))
        return base + timedelta(hours=self.rng.choice([21, 22, 22.5, 23, 23.75, 0.25, 1, 12]))

    def people(self, count: int, livemode: bool = True) -> None:
        for _ in range(count):
            self.n += 1
            program = self.rng.choice(self.programs)
            _participant, code = join(
                program, email=f"p{self.n}-{self.rng.random()}@people.example", name="Ana Nowak", livemode=livemode
            )
            if program == self.ab and code.variant_id is None:
                code.variant = self.rng.choice(self.variants)
                code.save(update_fields=["variant"])
            ReferralCode.all_merchants.filter(pk=code.pk).update(created_at=self.when())
            code.refresh_from_db()
            self.codes.append(code)

    def events(self, count: int) -> None:
        rng = self.rng
        for _ in range(count):
            code = rng.choice(self.codes)
            kind = rng.choice(["click", "click", "click", "share", "invite", "referral", "order", "order"])
            at = self.when()
            if kind == "click":
                Click.all_merchants.create(
                    merchant=self.merchant, livemode=code.livemode, click_id=uuid.uuid4(), occurred_at=at,
                    program=code.program, code=code, participant=code.participant,
                    ip_hash=rng.choice(["", "ip1", "ip2", "ip3"]), is_bot=rng.random() < 0.2,
                )  # fmt: skip
            elif kind == "share":
                # As the portal counts them: once per participant, program, channel and day (a repeat is not stored).
                share = ShareEvent(
                    merchant=self.merchant, program=code.program, participant=code.participant,
                    channel=rng.choice(CHANNELS), created_at=at,
                    day=at.astimezone(zoneinfo.ZoneInfo(self.merchant.timezone)).date(),
                )  # fmt: skip
                ShareEvent.all_merchants.bulk_create([share], ignore_conflicts=True)
            elif kind == "invite":
                self.n += 1
                Invite.all_merchants.create(
                    merchant=self.merchant, program=code.program, participant=code.participant,
                    email=f"f{self.n}@x.example", email_normalized=f"f{self.n}@x.example", created_at=at,
                )  # fmt: skip
            elif kind == "referral":
                self.referral(code, at)
            else:
                self.order(at)

    def referral(self, code: ReferralCode, at: datetime) -> Referral:
        self.n += 1
        status = self.rng.choice(["signed_up", "signed_up", "converted", "rejected"])
        referral = Referral.all_merchants.create(
            merchant=self.merchant, livemode=code.livemode, program=code.program, variant=code.variant,
            referrer=code.participant, code=code, referee_email=f"friend{self.n}@x.example",
            referee_email_normalized=f"friend{self.n}@x.example", status=status,
            rejection_reason="fraud" if status == "rejected" else "",
            touched_at=at - timedelta(hours=self.rng.randint(0, 90)),
            signed_up_at=at if status == "signed_up" else None, created_at=at,
        )  # fmt: skip
        self.referrals.append(referral)
        return referral

    def order(self, at: datetime, livemode: bool = True) -> Conversion:
        rng = self.rng
        self.n += 1
        live_refs = [r for r in self.referrals if r.livemode == livemode]
        status = rng.choice(["attributed", "attributed", "unattributed", "rejected"]) if live_refs else "unattributed"
        referral = rng.choice(live_refs) if status != "unattributed" else None
        program = referral.program if referral else (rng.choice([None, self.plain]))
        customer = rng.choice(self.customers)
        by_email = rng.random() < 0.3
        amount = Decimal(rng.randint(500, 30000)) / 100
        conversion = Conversion.all_merchants.create(
            merchant=self.merchant, livemode=livemode, order_id=f"o{self.n}", amount=amount,
            currency=rng.choice(["PLN", "PLN", "PLN", "EUR"]) if status == "unattributed" else "PLN",
            customer_external_id=None if by_email else customer,
            customer_email=f"{customer}@x.example", customer_email_normalized=f"{customer}@x.example",
            status=status, program=program, referral=referral, is_new_customer=rng.random() < 0.6, occurred_at=at,
        )  # fmt: skip
        self.conversions.append(conversion)
        if status == "attributed" and rng.random() < 0.7:
            self.reward(conversion, rng.choice(["pending", "approved", "issued", "voided"]))
        return conversion

    def reward(self, conversion: Conversion, status: str) -> Reward:
        value = Decimal(self.rng.randint(100, 2000)) / 100
        reward = Reward.all_merchants.create(
            merchant=self.merchant, livemode=conversion.livemode, program=conversion.program, rule=self.rule,
            side="referrer", participant=conversion.referral.referrer, referral=conversion.referral,
            conversion=conversion, kind="amount_coupon", unit=self.rng.choice(["money", "money", "points"]),
            value=value, original_value=value, currency="PLN", status=status, hold_until=timezone.now(),
            created_at=conversion.occurred_at + timedelta(minutes=self.rng.randint(0, 300)),
        )  # fmt: skip
        RewardEvent.all_merchants.create(merchant=self.merchant, reward=reward, to_status=status, actor="test")
        self.rewards.append(reward)
        return reward

    def refund(self, conversion: Conversion, amount: Decimal) -> Refund:
        self.n += 1
        refund = Refund.all_merchants.create(
            merchant=self.merchant, livemode=conversion.livemode, conversion=conversion, refund_id=f"r{self.n}",
            amount=amount, currency=conversion.currency,
        )  # fmt: skip
        Conversion.all_merchants.filter(pk=conversion.pk).update(refunded_amount=conversion.refunded_amount + amount)
        conversion.refresh_from_db()
        return refund

    def take_back(self, reward: Reward) -> None:
        """The coupon was used, then a partial refund of its order took a third of it back (the refunds service's
        record: the value stays, taken_back grows, an adjustment is written)."""
        refund = self.refund(reward.conversion, Decimal("0.01"))
        clawback = (reward.value / 3).quantize(Decimal("0.01"))
        Reward.all_merchants.filter(pk=reward.pk).update(status="redeemed", taken_back=clawback)
        RewardAdjustment.all_merchants.create(
            merchant=self.merchant, reward=reward, refund=refund, old_value=reward.value,
            new_value=reward.value - clawback, clawback=clawback, action="pro_rated",
        )  # fmt: skip

    def assess(self) -> None:
        model = fraud_model()
        if model is None:
            return
        for conversion in self.conversions:
            if conversion.referral_id and self.rng.random() < 0.5:
                auto = self.rng.choice(["approve", "review", "reject"])
                model.all_merchants.get_or_create(
                    merchant=self.merchant, conversion=conversion,
                    defaults={
                        "livemode": conversion.livemode, "program": conversion.program,
                        "referral": conversion.referral, "score": 50, "auto_decision": auto, "decision": auto,
                        "created_at": conversion.occurred_at + timedelta(minutes=1),
                    },
                )  # fmt: skip

    def cascade_rejects(self, reviewer=None) -> list[Referral]:
        """Fraud rejects that reach other rows than the one scored, the way the fraud app makes them: a later order
        scored as a reject (its referral and every other attributed order rejected), a friend's sign-up scored as a
        reject after orders, and, with a `reviewer`, a human rejecting an approved order and another reinstating a
        rejected one (FraudReviewEvent rows). Returns the referrals touched."""
        from tracking.services import referral_reject

        model = fraud_model()
        if model is None:
            return []
        assessed = set(model.all_merchants.filter(merchant=self.merchant).values_list("conversion_id", flat=True))
        signup_assessed = set(
            model.all_merchants.filter(merchant=self.merchant, conversion__isnull=True).values_list(
                "referral_id", flat=True
            )
        )
        by_referral = defaultdict(list)
        for c in Conversion.all_merchants.filter(merchant=self.merchant, status="attributed").order_by("occurred_at"):
            by_referral[c.referral_id].append(c)
        candidates = [orders for orders in by_referral.values() if len(orders) >= 2] + [
            orders for orders in by_referral.values() if len(orders) == 1
        ]

        def reject(referral: Referral, conversion: Conversion | None) -> Referral:
            """The referral scored as a reject on this order (or on its sign-up, without one)."""
            model.all_merchants.create(
                merchant=self.merchant, livemode=referral.livemode, program_id=referral.program_id, referral=referral,
                conversion=conversion, score=100, auto_decision="reject", decision="reject",
            )  # fmt: skip
            referral_reject(referral=referral, reason="fraud")
            return referral

        touched = []
        for orders in candidates:
            later = next((c for c in reversed(orders) if c.pk not in assessed), None)
            if later is None:
                continue
            touched.append(reject(later.referral, later))
            break
        for orders in candidates:
            referral = orders[0].referral
            if referral in touched or referral.pk in signup_assessed:
                continue
            touched.append(reject(referral, None))
            break
        if reviewer is not None:
            from fraud.services import assessment_review

            approved = (
                model.all_merchants.filter(merchant=self.merchant, decision="approve", conversion__status="attributed")
                .exclude(referral__in=touched)
                .first()
            )
            if approved is not None:
                assessment_review(assessment=approved, approve=False, reason="chargeback", user=reviewer)
                touched.append(approved.referral)
            rejected = (
                model.all_merchants.filter(merchant=self.merchant, decision="reject", conversion__isnull=False)
                .exclude(referral__in=touched)
                .first()
            )
            if rejected is not None:
                assessment_review(assessment=rejected, approve=True, reason="a real customer", user=reviewer)
                touched.append(rejected.referral)
        return touched


# --- brute force ---------------------------------------------------------------------------------------------------


def _zero_daily() -> dict:
    row = {f.name: 0 for f in DailyStats._meta.fields if f.name in _DAILY_FIELDS}
    for name in _DAILY_MONEY:
        row[name] = Decimal("0")
    row["shares_by_channel"] = {}
    row["time_to_purchase"] = {}
    return row


_DAILY_MONEY = [
    "referred_revenue_gross", "referred_refunds", "referred_revenue", "cohort_revenue", *COST_FIELDS.values(),
]  # fmt: skip
_DAILY_FIELDS = [
    "clicks", "unique_visitors", "bot_clicks", "participants_joined", "joined_and_shared", "first_shares",
    "invites_sent", "shares", "signups", "referrals_rejected", "attributed_orders", "rejected_orders",
    "referred_new_customers", "rewarded", "cohort_customers", "cohort_repeaters", "rewards", "fraud_flagged",
    "fraud_rejected", *_DAILY_MONEY, "shares_by_channel", "time_to_purchase",
]  # fmt: skip


def customer_key(conversion: Conversion) -> str | None:
    if conversion.customer_external_id:
        return "x:" + conversion.customer_external_id
    if conversion.customer_email_normalized:
        return "e:" + conversion.customer_email_normalized
    return None


def brute_customers(merchant) -> dict:
    tz = zoneinfo.ZoneInfo(merchant.timezone)
    orders = defaultdict(list)
    for c in Conversion.all_merchants.filter(merchant=merchant).select_related("referral"):
        key = customer_key(c)
        if key:
            orders[(c.livemode, key)].append(c)
    customers = {}
    for (livemode, key), items in orders.items():
        first = min(items, key=lambda c: (c.occurred_at, c.pk))
        same = [c for c in items if c.currency == first.currency]
        referred = first.status == "attributed"
        customers[(livemode, key)] = {
            "currency": first.currency,
            "first_day": first.occurred_at.astimezone(tz).date(),
            "referred": referred,
            "program_id": first.program_id if referred else None,
            "variant_id": first.referral.variant_id if referred and first.referral else None,
            "orders": len(same),
            "revenue": sum((c.amount - c.refunded_amount for c in same), Decimal("0")),
        }
    return customers


def brute_daily(merchant) -> dict:
    """Every DailyStats row, recounted from the raw tables: {(livemode, program, variant, day): {field: value}}."""
    tz = zoneinfo.ZoneInfo(merchant.timezone)

    def day(moment):
        return moment.astimezone(tz).date()

    rows = defaultdict(_zero_daily)
    visitors = defaultdict(set)
    codes = {c.pk: c for c in ReferralCode.all_merchants.filter(merchant=merchant)}
    code_of = {(c.program_id, c.participant_id): c for c in codes.values()}
    for c in Click.all_merchants.filter(merchant=merchant):
        key = (c.livemode, c.program_id, codes[c.code_id].variant_id, day(c.occurred_at))
        if c.is_bot:
            rows[key]["bot_clicks"] += 1
        else:
            rows[key]["clicks"] += 1
            visitors[key].add(c.ip_hash or str(c.click_id))
    for key, seen in visitors.items():
        rows[key]["unique_visitors"] = len(seen)
    shares = list(ShareEvent.all_merchants.filter(merchant=merchant))
    first_share = {}
    for s in shares:
        code = code_of[(s.program_id, s.participant_id)]
        key = (code.livemode, s.program_id, code.variant_id, day(s.created_at))
        rows[key]["shares"] += 1
        rows[key]["shares_by_channel"][s.channel] = rows[key]["shares_by_channel"].get(s.channel, 0) + 1
        pk = (s.program_id, s.participant_id)
        first_share[pk] = min(first_share.get(pk, s.created_at), s.created_at)
    for code in codes.values():
        key = (code.livemode, code.program_id, code.variant_id, day(code.created_at))
        rows[key]["participants_joined"] += 1
        shared = first_share.get((code.program_id, code.participant_id))
        if shared is not None:
            rows[key]["joined_and_shared"] += 1
            rows[(code.livemode, code.program_id, code.variant_id, day(shared))]["first_shares"] += 1
    for i in Invite.all_merchants.filter(merchant=merchant):
        code = code_of[(i.program_id, i.participant_id)]
        rows[(code.livemode, i.program_id, code.variant_id, day(i.created_at))]["invites_sent"] += 1
    for r in Referral.all_merchants.filter(merchant=merchant):
        key = (r.livemode, r.program_id, r.variant_id, day(r.created_at))
        rows[key]["referrals_rejected" if r.status == "rejected" else "signups"] += 1
    good_reward_conversions = set(
        Reward.all_merchants.filter(merchant=merchant, status__in=GOOD, conversion__isnull=False).values_list(
            "conversion_id", flat=True
        )
    )
    for c in Conversion.all_merchants.filter(merchant=merchant, referral__isnull=False, program__isnull=False):
        r = c.referral
        key = (c.livemode, c.program_id, r.variant_id, day(c.occurred_at))
        if c.status == "rejected":
            rows[key]["rejected_orders"] += 1
        if c.status != "attributed":
            continue
        row = rows[key]
        row["attributed_orders"] += 1
        row["referred_revenue_gross"] += c.amount
        row["referred_refunds"] += c.refunded_amount
        row["referred_revenue"] += c.amount - c.refunded_amount
        if c.is_new_customer:
            row["referred_new_customers"] += 1
            row["rewarded"] += c.pk in good_reward_conversions
            bucket = str(ttp_bucket((c.occurred_at - r.touched_at).total_seconds()))
            row["time_to_purchase"][bucket] = row["time_to_purchase"].get(bucket, 0) + 1
    for (livemode, _key), customer in brute_customers(merchant).items():
        if customer["referred"]:
            row = rows[(livemode, customer["program_id"], customer["variant_id"], customer["first_day"])]
            row["cohort_customers"] += 1
            row["cohort_repeaters"] += customer["orders"] >= 2
            row["cohort_revenue"] += customer["revenue"]
    for w in Reward.all_merchants.filter(merchant=merchant).select_related("referral"):
        variant = w.referral.variant_id if w.referral_id else code_of[(w.program_id, w.participant_id)].variant_id
        row = rows[(w.livemode, w.program_id, variant, day(w.created_at))]
        row["rewards"] += 1
        if w.unit == "money":
            row[COST_FIELDS[w.status]] += w.cost if w.status == "redeemed" else w.value
            row[COST_FIELDS["clawed_back"]] += w.taken_back if w.status == "redeemed" else 0
    model = fraud_model()
    if model is not None:
        for a in model.all_merchants.filter(merchant=merchant).select_related("referral"):
            row = rows[(a.livemode, a.program_id, a.referral.variant_id, day(a.created_at))]
            row["fraud_flagged"] += a.auto_decision != "approve"
            row["fraud_rejected"] += a.decision == "reject"
    return dict(rows)


def table_daily(merchant) -> dict:
    return {
        (s.livemode, s.program_id, s.variant_id, s.day): {f: getattr(s, f) for f in _DAILY_FIELDS}
        for s in DailyStats.objects.for_merchant(merchant)
    }


def brute_shop(merchant) -> dict:
    tz = zoneinfo.ZoneInfo(merchant.timezone)
    money = ["revenue_gross", "refunds", "revenue", "attributed_revenue", "other_cohort_revenue"]
    rows = defaultdict(
        lambda: {
            **{f: 0 for f in ("orders", "attributed_orders", "new_customers", "referred_new_customers",
                              "other_cohort_customers", "other_cohort_repeaters")},
            **{f: Decimal("0") for f in money},
        }
    )  # fmt: skip
    for c in Conversion.all_merchants.filter(merchant=merchant):
        row = rows[(c.livemode, c.currency, c.occurred_at.astimezone(tz).date())]
        row["orders"] += 1
        row["revenue_gross"] += c.amount
        row["refunds"] += c.refunded_amount
        row["revenue"] += c.amount - c.refunded_amount
        if c.status == "attributed":
            row["attributed_orders"] += 1
            row["attributed_revenue"] += c.amount - c.refunded_amount
    for (livemode, _key), customer in brute_customers(merchant).items():
        row = rows[(livemode, customer["currency"], customer["first_day"])]
        row["new_customers"] += 1
        if customer["referred"]:
            row["referred_new_customers"] += 1
        else:
            row["other_cohort_customers"] += 1
            row["other_cohort_repeaters"] += customer["orders"] >= 2
            row["other_cohort_revenue"] += customer["revenue"]
    return dict(rows)


def table_shop(merchant) -> dict:
    fields = [
        "orders", "attributed_orders", "new_customers", "referred_new_customers", "other_cohort_customers",
        "other_cohort_repeaters", "revenue_gross", "refunds", "revenue", "attributed_revenue", "other_cohort_revenue",
    ]  # fmt: skip
    return {
        (s.livemode, s.currency, s.day): {f: getattr(s, f) for f in fields}
        for s in ShopDailyStats.objects.for_merchant(merchant)
    }


def brute_referrers(merchant) -> dict:
    tz = zoneinfo.ZoneInfo(merchant.timezone)
    rows = defaultdict(lambda: {"signups": 0, "orders": 0, "new_customers": 0, "revenue": Decimal("0")})
    for r in Referral.all_merchants.filter(merchant=merchant).exclude(status="rejected"):
        rows[(r.livemode, r.program_id, r.referrer_id, r.created_at.astimezone(tz).date())]["signups"] += 1
    for c in Conversion.all_merchants.filter(merchant=merchant, status="attributed").select_related("referral"):
        r = c.referral
        row = rows[(c.livemode, c.program_id, r.referrer_id, c.occurred_at.astimezone(tz).date())]
        row["orders"] += 1
        row["new_customers"] += c.is_new_customer and r.status != "rejected"
        row["revenue"] += c.amount - c.refunded_amount
    return dict(rows)


def table_referrers(merchant) -> dict:
    return {
        (s.livemode, s.program_id, s.participant_id, s.day): {
            "signups": s.signups,
            "orders": s.orders,
            "new_customers": s.new_customers,
            "revenue": s.revenue,
        }
        for s in ReferrerDailyStats.objects.for_merchant(merchant)
    }


def nonzero(rows: dict) -> dict:
    """Brute-force rows that have anything in them (the rollup stores no all-zero rows it did not need)."""

    def empty(value) -> bool:
        return value in (0, {}) or value == Decimal("0")

    return {key: row for key, row in rows.items() if not all(empty(v) for v in row.values())}


def assert_rollups_match(merchant) -> None:
    for name, brute, table in (
        ("DailyStats", brute_daily, table_daily),
        ("ShopDailyStats", brute_shop, table_shop),
        ("ReferrerDailyStats", brute_referrers, table_referrers),
    ):
        expected, actual = nonzero(brute(merchant)), nonzero(table(merchant))
        assert set(actual) == set(expected), (name, set(actual) ^ set(expected))
        for key, row in expected.items():
            differences = {f: (actual[key][f], v) for f, v in row.items() if actual[key][f] != v}
            assert actual[key] == row, (name, key, differences)


def referrer_totals(merchant) -> dict:
    from analytics.models import ReferrerStats

    return {
        (s.program_id, s.participant_id): (s.signups, s.orders, s.new_customers, s.revenue, s.first_shared_at)
        for s in ReferrerStats.objects.for_merchant(merchant)
    }


def brute_referrer_totals(merchant) -> dict:
    totals = defaultdict(lambda: [0, 0, 0, Decimal("0"), None])
    for (_live, program, participant, _day), row in brute_referrers(merchant).items():
        t = totals[(program, participant)]
        t[0] += row["signups"]
        t[1] += row["orders"]
        t[2] += row["new_customers"]
        t[3] += row["revenue"]
    firsts = {}
    for s in ShareEvent.all_merchants.filter(merchant=merchant):
        key = (s.program_id, s.participant_id)
        firsts[key] = min(firsts.get(key, s.created_at), s.created_at)
    result = {}
    for code in ReferralCode.all_merchants.filter(merchant=merchant):
        key = (code.program_id, code.participant_id)
        t = totals.get(key, [0, 0, 0, Decimal("0"), None])
        result[key] = (t[0], t[1], t[2], t[3], firsts.get(key))
    return result


__all__ = ["Participant", "Program", "World", "assert_rollups_match"]
