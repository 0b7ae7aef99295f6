# ruff: noqa: S608 - seeded random numbers for demo data (no secrets); SQL built from model table names only
"""The Demo Shop's history for `make run`: 90 days of a referral program that runs, so that a newcomer opens a
living dashboard at once.

What it holds (deterministic: one seeded random.Random): ~150 referrers who joined along a growth curve and were
split between the two arms of an A/B test (B offers its own reward, paid by its own rule, after a 14-day hold);
~3,000 link clicks with a weekday and hour-of-day rhythm; friends who signed up (their welcome coupon) and bought,
some again; ~400 orders nobody referred, from 30 days before the program on (the baseline of the before/after and
referred-vs-not numbers); a few partial and full refunds (a reward pro-rated, one voided, one clawed back); coupons
redeemed; rewards still in their hold; one order waiting in the fraud review queue; shares on every channel and a
few email invitations.

Everything but the clicks, shares and invitations (written in bulk, as the click ingest does) goes through the
services the API and the workers use (joining, attribution, fraud scoring, deciding, releasing, redeeming, refunds),
called in-process in the order the events happened, so every number agrees with every other. Those services stamp
the real time: each event runs in its own slice of wall-clock time, and at the end every timestamp written inside a
slice is moved to the event's moment in the past (the few stamps that a later decision reads, such as a sign-up's
time or a hold's end, are moved at once). Then the rollups are recounted for the whole span.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.apps import apps
from django.db import connection, models, transaction
from django.utils import timezone

from analytics.services import rollup_backfill
from fraud.models import FraudAssessment
from programs.models import Invite, Participant, Program, ProgramVariant, ShareEvent
from referral_saas.tenancy.models import Merchant, TenantModel
from rewards.models import Kind, Notification, Reward, RewardRule, Side
from rewards.services import (
    conversion_process,
    referral_process,
    refund_apply,
    reward_redeem,
    reward_release,
    reward_rule_create,
)
from tracking.models import Click, Conversion, Referral, ReferralCode
from tracking.partitions import add_months, click_partition_create, month_start
from tracking.services import conversion_record, participant_join, referral_record_signup, refund_record

DAYS = 90  # of the program, ending today
BEFORE_DAYS = 30  # of shop orders before the program started (the before/after baseline)
REFERRERS = 150
CLICKS = 3_000
FRIENDS = 235  # referred friends who click through to buy (some too recently to have bought yet)
UNREFERRED_ORDERS = 400
ACTOR = "demo:seed"

FIRST = [
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Isabella", "Lucas", "Mia", "Mason",
    "Amelia", "Ethan", "Harper", "Logan", "Evelyn", "Aiden", "Abigail", "Jacob", "Ella", "Jackson", "Scarlett",
    "Levi", "Grace", "Sebastian", "Chloe", "Mateo", "Lily", "Henry", "Zoe", "Owen", "Nora", "Leo", "Hannah",
    "Ezra", "Layla", "Caleb", "Aria", "Wyatt", "Riley", "Jack", "Stella", "Luke", "Maya", "Julian", "Ruby",
    "Daniel", "Alice", "Samuel", "Clara", "Nathan", "Ivy", "Isaac", "Leah"
]  # fmt: skip
LAST = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
    "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera",
    "Campbell", "Mitchell", "Carter", "Roberts", "Kowalski", "Novak"
]  # fmt: skip
MAIL = ["gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me", "hotmail.com"]
AGENTS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605",
]
BOT_AGENT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
# Where links are shared (shares and the clicks they bring): (channel, utm_source, weight).
CHANNELS = [
    ("whatsapp", "whatsapp", 30),
    ("facebook", "facebook", 18),
    ("email", "email", 16),
    ("copy", "", 14),
    ("x", "x", 7),
    ("sms", "sms", 6),
    ("telegram", "telegram", 5),
    ("qr", "qr", 4),
]
WEEKDAY = [1.0, 1.05, 1.1, 1.05, 0.95, 0.8, 0.85]  # Monday..Sunday
HOURS = [1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 10, 12, 11, 9, 8, 8, 9, 11, 13, 14, 12, 8, 4]  # UTC, by hour


@dataclass(order=True)
class Event:
    at: datetime.datetime
    order: int  # ties: in the order they were planned
    kind: str = field(compare=False)
    data: dict = field(compare=False, default_factory=dict)


@dataclass
class Person:
    name: str
    email: str
    external_id: str


class Timeline:
    """Maps the real time a service stamped to the moment in the past it stands for: each event runs in its own
    slice of wall-clock time, and every timestamp written in that slice belongs to the event."""

    def __init__(self) -> None:
        self.marks: list[tuple[datetime.datetime, datetime.datetime]] = []  # (wall clock at the start, virtual)

    def at(self, moment: datetime.datetime) -> None:
        wall = timezone.now()
        if self.marks and wall <= self.marks[-1][0]:  # the clock did not move: a new slice must start later
            time.sleep(0.000_002)
            wall = timezone.now()
        self.marks.append((wall, moment))

    def apply(self, *, merchant: Merchant) -> int:
        """Move every timestamp the slices hold, in every table of the merchant, to its event's moment."""
        end = timezone.now() + datetime.timedelta(seconds=1)
        rows = [
            (wall, self.marks[i + 1][0] if i + 1 < len(self.marks) else end, moment - wall)
            for i, (wall, moment) in enumerate(self.marks)
        ]
        moved = 0
        with connection.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE _demo_slices (span tstzrange, shift interval) ON COMMIT DROP")
            cursor.executemany(
                "INSERT INTO _demo_slices VALUES (tstzrange(%s, %s, '[)'), %s)", [(lo, hi, d) for lo, hi, d in rows]
            )
            cursor.execute("CREATE INDEX ON _demo_slices USING gist (span); ANALYZE _demo_slices")
            # A coupon's expiry is its issue plus its validity: it moves with the issue (before the issue moves). A
            # hold's end was set in the past already where there is a hold (_after_deciding); without one it is the
            # moment the reward was made.
            reward, rule = Reward._meta.db_table, RewardRule._meta.db_table
            cursor.execute(
                f"UPDATE {reward} t SET expires_at = t.expires_at + s.shift FROM _demo_slices s "
                f"WHERE t.merchant_id = %s AND t.expires_at IS NOT NULL AND s.span @> t.issued_at",
                [merchant.pk],
            )
            cursor.execute(
                f"UPDATE {reward} t SET hold_until = t.hold_until + s.shift FROM _demo_slices s, {rule} r "
                f"WHERE t.merchant_id = %s AND r.id = t.rule_id AND r.hold_days = 0 AND s.span @> t.hold_until",
                [merchant.pk],
            )
            for model in _tenant_models():
                table = model._meta.db_table
                for column in _time_columns(model):
                    if model is Reward and column in ("expires_at", "hold_until"):
                        continue
                    cursor.execute(
                        f"UPDATE {table} t SET {column} = t.{column} + s.shift FROM _demo_slices s "
                        f"WHERE t.merchant_id = %s AND s.span @> t.{column}",
                        [merchant.pk],
                    )
                    moved += cursor.rowcount
            cursor.execute("DROP TABLE _demo_slices")
        return moved


def _tenant_models() -> list[type[models.Model]]:
    """The tenant tables (a model defined at run time, e.g. by a test, has no table: left out)."""
    existing = set(connection.introspection.table_names())
    return [
        m
        for m in apps.get_models()
        if issubclass(m, TenantModel)
        and not m._meta.proxy
        and m._meta.managed
        and m is not Click
        and m._meta.db_table in existing
    ]


def _time_columns(model) -> list[str]:
    return [f.column for f in model._meta.concrete_fields if isinstance(f, models.DateTimeField)]


# --- the plan -------------------------------------------------------------------------------------------------------


def _money(rng: random.Random, median: float, spread: float, low: float, high: float) -> Decimal:
    value = min(max(rng.lognormvariate(math.log(median), spread), low), high)
    return Decimal(f"{value:.2f}")


def _weighted_hour(rng: random.Random, day: datetime.datetime) -> datetime.datetime:
    hour = rng.choices(range(24), weights=HOURS)[0]
    return day + datetime.timedelta(hours=hour, seconds=rng.randrange(3600))


def _person(rng: random.Random, n: int, prefix: str) -> Person:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    local = f"{first}.{last}{n}".lower()
    return Person(name=f"{first} {last}", email=f"{local}@{rng.choice(MAIL)}", external_id=f"{prefix}-{n}")


def seed_demo_history(
    *, merchant: Merchant, program: Program, progress: Callable[[str], None] | None = None, seed: int = 18
) -> dict[str, int]:
    """Seed the demo merchant's history (see the module's docstring), all or nothing, then roll up its stats. Call
    it once, on a new merchant (in the caller's transaction, if any: see demo_rollup)."""
    with transaction.atomic():
        queued = len(connection.run_on_commit)
        counts = demo_history_write(merchant=merchant, program=program, progress=progress, seed=seed)
        # The work the services queued for the workers (deciding, releasing, emails...) was done here, in order and
        # in the past: the messages would find it done. Not sent, so the worker does not start on ~1,000 no-ops.
        del connection.run_on_commit[queued:]
    if not connection.in_atomic_block:
        demo_rollup(merchant=merchant, progress=progress)
    return counts


def demo_rollup(*, merchant: Merchant, progress: Callable[[str], None] | None = None) -> None:
    """Recount the rollups of the history's days (after its transaction committed: the rollup commits by chunks)."""
    if progress:
        progress("    rolling up the stats…")
    # Fresh statistics first: planned on the empty tables' estimates, the rollup's joins take seconds, not 0.1 s.
    with connection.cursor() as cursor:
        for model in [*_tenant_models(), Click]:
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    today = timezone.now().date()
    rollup_backfill(since=today - datetime.timedelta(days=DAYS + BEFORE_DAYS), merchants=[merchant])


def demo_history_write(
    *, merchant: Merchant, program: Program, progress: Callable[[str], None] | None = None, seed: int = 18
) -> dict[str, int]:
    """The history's rows (no rollup)."""
    say = progress or (lambda _message: None)
    started = time.monotonic()
    rng = random.Random(seed)
    now = timezone.now().replace(microsecond=0)
    today = now.date()
    first_day = today - datetime.timedelta(days=DAYS - 1)
    midnight = datetime.datetime.combine(first_day, datetime.time.min, tzinfo=datetime.UTC)
    variant_b = _ab_test(merchant=merchant, program=program, first_day=first_day)
    timeline = Timeline()
    counts: dict[str, int] = {}

    # Referrers join along a growth curve (more of them every week), in the daytime.
    say(f"==> seeding {DAYS} days of demo history: participants…")
    joined: list[tuple[datetime.datetime, Participant, ReferralCode]] = []
    join_times = sorted(
        _weighted_hour(rng, midnight + datetime.timedelta(days=int(DAYS * rng.random() ** 0.6)))
        for _ in range(REFERRERS)
    )
    for n, at in enumerate(join_times, start=1):
        at = min(at, now - datetime.timedelta(minutes=30))
        person = _person(rng, n, "cust")
        timeline.at(at)
        participant, code, _created = participant_join(
            merchant=merchant,
            livemode=True,
            program=program,
            external_id=person.external_id,
            email=person.email,
            name=person.name,
            language=rng.choices(["en", "pl", "ro", "ru"], weights=[85, 7, 4, 4])[0],
            marketing_consent=rng.random() < 0.6,
        )
        joined.append((at, participant, code))
    counts["referrers"] = len(joined)

    say("    clicks, shares and invitations…")
    clicks = _clicks_and_shares(rng=rng, merchant=merchant, program=program, joined=joined, now=now)
    counts["clicks"] = len(clicks)

    say("    orders, refunds, rewards…")
    events = _plan(rng=rng, joined=joined, clicks=clicks, now=now, midnight=midnight, variant_b=variant_b)
    counts.update(_run(events=events, merchant=merchant, program=program, timeline=timeline, now=now, say=say))

    say("    moving the services' timestamps into the past…")
    with transaction.atomic():
        timeline.apply(merchant=merchant)
        # The emails of the past were sent then: the workers must not send them now.
        Notification.objects.for_merchant(merchant).filter(sent_at__isnull=True).update(sent_at=models.F("created_at"))
    say(f"    done in {time.monotonic() - started:.1f}s: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return counts


def _ab_test(*, merchant: Merchant, program: Program, first_day: datetime.date) -> ProgramVariant:
    """The program runs since `first_day`, as an A/B test: A offers the program's reward, B a fixed $15 coupon for
    the referrer after a 14-day hold, paid by B's own rule. With a goal and a budget, as a merchant would set."""
    Program.objects.for_merchant(merchant).filter(pk=program.pk).update(
        starts_on=first_day,
        created_at=datetime.datetime.combine(first_day, datetime.time(9), tzinfo=datetime.UTC),
        goal_customers=400,  # a quarter's goal, more than half reached: the dashboard's progress bars
        budget=Decimal(6000),
    )
    program.refresh_from_db()
    variants = ProgramVariant.objects.for_merchant(merchant)
    variants.create(program=program, name="A", weight=1)
    b = variants.create(
        program=program,
        name="B",
        weight=1,
        referrer_offer="A $15 coupon for every friend who buys",
        referee_offer=program.referee_offer,
    )
    reward_rule_create(
        merchant=merchant,
        program=program,
        variant=b,
        name="Referrer (B): $15 per friend's first order",
        side=Side.REFERRER,
        trigger=RewardRule.Trigger.FIRST_PURCHASE,
        kind=Kind.AMOUNT_COUPON,
        value_type=RewardRule.ValueType.FIXED,
        value=Decimal(15),
        coupon_prefix="THANKS",
        coupon_valid_days=90,
        hold_days=14,
    )
    RewardRule.objects.for_merchant(merchant).filter(program=program).update(created_at=program.created_at)
    return b


@dataclass
class SeedClick:
    click_id: uuid.UUID
    at: datetime.datetime
    code: ReferralCode
    is_bot: bool


def _clicks_and_shares(*, rng, merchant, program, joined, now) -> list[SeedClick]:
    """Clicks spread over the days (more as more referrers join, a weekday and hour rhythm), most on the links of
    a few keen referrers; the shares that brought them, and a few email invitations. Written in bulk (the click
    path writes clicks in bulk too, by the ingest task): there is no decision in them."""
    weights = [rng.paretovariate(1.3) for _ in joined]
    first = joined[0][0]
    days = (now - first).days + 1
    per_day = []
    for d in range(days):
        day = datetime.datetime.combine((first + datetime.timedelta(days=d)).date(), datetime.time.min, datetime.UTC)
        active = sum(w for (at, _p, _c), w in zip(joined, weights, strict=True) if at < day + datetime.timedelta(1))
        per_day.append((day, active * WEEKDAY[day.weekday()]))
    total = sum(w for _d, w in per_day) or 1
    months = set()
    rows, seeded, shares = [], [], {}
    channels = CHANNELS
    for day, weight in per_day:
        for _ in range(round(CLICKS * weight / total)):
            at = _weighted_hour(rng, day)
            candidates = [(i, w) for i, ((j, _p, _c), w) in enumerate(zip(joined, weights, strict=True)) if j < at]
            if not candidates or at >= now:
                continue
            index = rng.choices([i for i, _w in candidates], weights=[w for _i, w in candidates])[0]
            _joined_at, participant, code = joined[index]
            channel, source, _weight = rng.choices(channels, weights=[c[2] for c in channels])[0]
            is_bot = rng.random() < 0.03
            click = Click(
                merchant=merchant,
                livemode=True,
                click_id=uuid.UUID(int=rng.getrandbits(128), version=4),
                occurred_at=at,
                program=program,
                code=code,
                participant=participant,
                ip_hash=hashlib.sha256(f"demo-ip-{rng.randrange(2000)}".encode()).hexdigest()[:16],
                user_agent=BOT_AGENT if is_bot else rng.choice(AGENTS),
                utm_source=source,
                utm_medium="referral" if source else "",
                utm_campaign="friends",
            )
            rows.append(click)
            seeded.append(SeedClick(click.click_id, at, code, is_bot))
            months.add(month_start(at))
            # The share that brought it (one share brings several clicks): that day or a day or two before.
            if rng.random() < 0.3:
                shared = max(at - datetime.timedelta(days=rng.choice([0, 0, 0, 1, 2]), hours=1), _joined_at)
                shares.setdefault((participant.pk, channel, shared.date()), (participant, channel, shared))
    # Referrers who shared without anyone clicking yet (mostly the newest).
    for at, participant, _code in joined:
        if rng.random() < 0.35:
            shared = min(at + datetime.timedelta(hours=rng.randrange(1, 72)), now - datetime.timedelta(minutes=5))
            channel = rng.choices(channels, weights=[c[2] for c in channels])[0][0]
            shares.setdefault((participant.pk, channel, shared.date()), (participant, channel, shared))
    # A few referrers also invite friends by email from the portal.
    invites = []
    for n, (at, participant, _code) in enumerate(joined):
        for k in range(rng.choice([0, 0, 0, 0, 1, 2, 3])):
            sent = min(at + datetime.timedelta(hours=rng.uniform(0.1, 96)), now - datetime.timedelta(minutes=5))
            email = f"invited.friend{n}.{k}@{rng.choice(MAIL)}"
            invites.append(
                Invite(
                    merchant=merchant, program=program, participant=participant, email=email, email_normalized=email,
                    language=participant.language, status=Invite.Status.SENT, created_at=sent, sent_at=sent,
                )
            )  # fmt: skip
    Invite.objects.for_merchant(merchant).bulk_create(invites)
    for month in sorted(months):
        click_partition_create(month=month)
        click_partition_create(month=add_months(month, 1))
    Click.objects.for_merchant(merchant).bulk_create(rows, batch_size=1000)
    ShareEvent.objects.for_merchant(merchant).bulk_create(
        [
            ShareEvent(merchant=merchant, program=program, participant=p, channel=channel, created_at=at, day=at.date())
            for p, channel, at in shares.values()
        ],
        ignore_conflicts=True,
    )
    seeded.sort(key=lambda c: c.at)
    return seeded


def _plan(*, rng, joined, clicks, now, midnight, variant_b) -> list[Event]:
    """Every event after the clicks, in time order: friends signing up and buying (some again), the shop's other
    orders, refunds, coupons redeemed, and the days on which held rewards come due."""
    events: list[Event] = []

    def add(at: datetime.datetime, kind: str, **data) -> None:
        events.append(Event(at, len(events), kind, data))

    # Referred friends: some of the human clicks lead to an order (most within a few days); about half the friends
    # sign up at the shop first (and get their welcome coupon, which they use on the first order).
    # B's $15 convinces a few more friends than A's 10%: a weighted sample (key u^(1/w), the largest keys win).
    human = [c for c in clicks if not c.is_bot and c.at < now - datetime.timedelta(hours=2)]
    keyed = sorted(human, key=lambda c: rng.random() ** (1 / (1.3 if c.code.variant_id == variant_b.pk else 1)))
    friend_clicks = sorted(keyed[-FRIENDS:], key=lambda c: c.at)
    referred_orders: list[dict] = []
    for n, click in enumerate(friend_clicks, start=1):
        friend = _person(rng, n, "friend")
        delay = datetime.timedelta(minutes=min(rng.lognormvariate(math.log(600), 1.6), 60 * 24 * 25) + 3)
        order_at = click.at + delay
        signs_up = rng.random() < 0.55
        if signs_up:
            add(click.at + datetime.timedelta(minutes=rng.randrange(2, 15)), "signup", friend=friend, click=click)
        if order_at >= now - datetime.timedelta(minutes=10) or (signs_up and rng.random() < 0.12):
            continue  # clicked (and maybe signed up) but not bought (yet)
        order = {
            "order_id": f"H-{2000 + n * 7 + rng.randrange(7)}",
            "friend": friend,
            "amount": _money(rng, 68, 0.45, 14, 420),
            "click": click,
            "redeems_welcome": signs_up and rng.random() < 0.85,
        }
        add(order_at, "order", **order)
        referred_orders.append({**order, "at": order_at})
        # Some come back: repeat orders (the LTV and retention of referred customers).
        if rng.random() < 0.17:
            again = order_at + datetime.timedelta(days=rng.uniform(6, 45))
            if again < now:
                add(
                    again,
                    "order",
                    order_id=f"H-{6000 + n}",
                    friend=friend,
                    amount=_money(rng, 72, 0.4, 14, 420),
                )

    # The shop's other orders: from BEFORE_DAYS before the program until today, a few a day, some customers twice.
    start = midnight - datetime.timedelta(days=BEFORE_DAYS)
    span = (now - start).total_seconds()
    customers: list[Person] = []
    for n in range(1, UNREFERRED_ORDERS + 1):
        at = start + datetime.timedelta(seconds=span * rng.random())
        at = min(_weighted_hour(rng, datetime.datetime.combine(at.date(), datetime.time.min, datetime.UTC)), now)
        if customers and rng.random() < 0.22:
            customer = rng.choice(customers)
        else:
            customer = _person(rng, n, "shop")
            customers.append(customer)
        add(at, "order", order_id=f"H-{5000 + n}", friend=customer, amount=_money(rng, 61, 0.5, 9, 380), shop=True)

    # Refunds of referred orders: partial ones (the referrer's percent reward shrinks), one full refund of an order
    # whose reward was not used yet (voided) and one whose coupon the referrer had already used (clawed back).
    a_orders = [o for o in referred_orders if o["click"].code.variant_id != variant_b.pk]
    old = [o for o in a_orders if now - datetime.timedelta(days=75) < o["at"] < now - datetime.timedelta(days=30)]
    picked = rng.sample(old, 6) if len(old) >= 6 else old
    for i, order in enumerate(picked):
        refund_at = order["at"] + datetime.timedelta(days=rng.uniform(3, 12))
        if i == 0:  # used first, then refunded in full: clawed back
            add(order["at"] + datetime.timedelta(days=1), "redeem", order_id=order["order_id"], side=Side.REFERRER)
            add(refund_at, "refund", order_id=order["order_id"], share=Decimal(1))
        elif i == 1:
            add(refund_at, "refund", order_id=order["order_id"], share=Decimal(1))
        else:
            add(refund_at, "refund", order_id=order["order_id"], share=Decimal(rng.choice(["0.2", "0.3", "0.5"])))
    # Referrers use about half of their coupons, a few days to weeks after they get them (B's after its hold).
    for order in referred_orders:
        if order in picked[:2]:
            continue
        held = 14 if order["click"].code.variant_id == variant_b.pk else 0
        if rng.random() < 0.45:
            add(order["at"] + datetime.timedelta(days=held + rng.uniform(2, 25)), "redeem", order_id=order["order_id"],
                side=Side.REFERRER)  # fmt: skip
    # Two refunds of orders nobody referred.
    for share in (Decimal(1), Decimal("0.4")):
        order = rng.choice([e for e in events if e.kind == "order" and e.data.get("shop")])
        add(order.at + datetime.timedelta(days=rng.uniform(2, 9)), "refund", order_id=order.data["order_id"],
            share=share)  # fmt: skip

    # One suspicious order two days ago, waiting for a person: the friend's mailbox has the referrer's name, at a
    # disposable-mail domain.
    suspect = max((c for c in human if c.at < now - datetime.timedelta(days=2)), key=lambda c: c.at)
    referrer = suspect.code.participant
    local = (referrer.email or "").partition("@")[0]
    twin = Person(name=referrer.name, email=f"{local}@mailinator.com", external_id="friend-suspect")
    add(suspect.at + datetime.timedelta(minutes=42), "order", order_id="H-9001", click=suspect, amount=Decimal(189),
        friend=twin)  # fmt: skip

    # Held rewards come due at 06:00 every day, and once more just before now (what beat would have done by now).
    day = midnight + datetime.timedelta(hours=6)
    while day < now:
        add(day, "release")
        day += datetime.timedelta(days=1)
    add(now - datetime.timedelta(seconds=1), "release")
    events = [e for e in events if e.at < now]
    events.sort()
    return events


def _run(*, events, merchant, program, timeline, now, say) -> dict[str, int]:
    counts = {"signups": 0, "orders": 0, "refunds": 0, "redeemed": 0}
    hold_days = {rule.pk: rule.hold_days for rule in RewardRule.objects.for_merchant(merchant).filter(program=program)}
    orders = 0
    for event in events:
        timeline.at(event.at)
        data = event.data
        if event.kind == "signup":
            friend, click = data["friend"], data["click"]
            referral, created = referral_record_signup(
                merchant=merchant,
                livemode=True,
                customer_external_id=friend.external_id,
                customer_email=friend.email,
                code=click.code.code,
            )
            if created:
                # The sign-up came through the friend's click: its time opens the attribution window.
                Referral.objects.for_merchant(merchant).filter(pk=referral.pk).update(
                    created_at=event.at, signed_up_at=event.at, touched_at=click.at, click_id=_click_pk(merchant, click)
                )
                referral_process(merchant=merchant, referral_id=referral.pk)
                _after_deciding(merchant, hold_days, event.at, referral=referral.pk)
                counts["signups"] += 1
        elif event.kind == "order":
            friend = data["friend"]
            if data.get("redeems_welcome"):
                welcome = (
                    Reward.objects.for_merchant(merchant)
                    .filter(side=Side.REFEREE, referral__referee_external_id=friend.external_id, status="issued")
                    .first()
                )
                if welcome is not None:
                    reward_redeem(reward=welcome, actor=ACTOR)
                    counts["redeemed"] += 1
            click = data.get("click")
            conversion, _created = conversion_record(
                merchant=merchant,
                livemode=True,
                order_id=data["order_id"],
                amount=data["amount"],
                currency="USD",
                customer_external_id=friend.external_id,
                customer_email=friend.email,
                click_id=str(click.click_id) if click else None,
                occurred_at=event.at,
            )
            orders += 1
            if conversion.referral_id and conversion.status == Conversion.Status.ATTRIBUTED:
                conversion_process(merchant=merchant, conversion_id=conversion.pk)
                _after_deciding(merchant, hold_days, event.at, conversion=conversion.pk)
            if orders % 100 == 0:
                say(f"    {orders} orders…")
        elif event.kind == "refund":
            conversion = Conversion.objects.for_merchant(merchant).filter(order_id=data["order_id"]).first()
            if conversion is None:
                continue
            amount = (conversion.amount - conversion.refunded_amount) * data["share"]
            refund, _created = refund_record(
                merchant=merchant,
                livemode=True,
                order_id=conversion.order_id,
                amount=amount.quantize(Decimal("0.01")),
                refund_id=f"R{conversion.order_id}",
                reason="Returned" if data["share"] == 1 else "Partly returned",
            )
            refund_apply(merchant=merchant, refund_id=refund.pk)
            counts["refunds"] += 1
        elif event.kind == "redeem":
            reward = (
                Reward.objects.for_merchant(merchant)
                .filter(conversion__order_id=data["order_id"], side=data["side"], status="issued")
                .first()
            )
            if reward is not None:
                reward_redeem(reward=reward, actor=ACTOR)
                counts["redeemed"] += 1
        elif event.kind == "release":
            due = Reward.objects.for_merchant(merchant).filter(
                status__in=("pending", "approved"), hold_until__lte=event.at
            )
            for pk in due.values_list("pk", flat=True):
                reward_release(merchant_id=merchant.pk, reward_id=pk)
    counts["orders"] = orders
    counts["in review"] = FraudAssessment.objects.for_merchant(merchant).filter(decision="review").count()
    return counts


def _click_pk(merchant, click: SeedClick) -> int | None:
    return (
        Click.objects.for_merchant(merchant)
        .filter(click_id=click.click_id, occurred_at=click.at)
        .values_list("pk", flat=True)
        .first()
    )


def _after_deciding(merchant, hold_days: dict, at: datetime.datetime, **about) -> None:
    """The rewards just decided: those without a hold are released now (as the worker would at once); a held one
    waits until its hold ends counted from `at`, when a daily release event issues it."""
    made = Reward.objects.for_merchant(merchant).filter(status="pending", **about)
    for reward in made:
        days = hold_days.get(reward.rule_id, 0)
        if days:
            Reward.objects.for_merchant(merchant).filter(pk=reward.pk).update(
                hold_until=at + datetime.timedelta(days=days)
            )
        else:
            reward_release(merchant_id=merchant.pk, reward_id=reward.pk)
