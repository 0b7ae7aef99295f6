"""Attribution: which referrer (if any) an order or a friend's sign-up belongs to.

An order is attributed by, in order: the click id, the code, an earlier referral of the same customer (by external
id or normalised email). Only while the program is live, inside its attribution window (counted from the click or
sign-up), by its model (first touch keeps the first referrer; last touch lets a newer link or code take over a
friend who has not bought yet), and only for new customers when the program says so. A self-referral is never
attributed, and the reason is kept. Every order is stored, attributed or not: unattributed orders are the baseline
of the "referred vs not referred" numbers. An order in another currency than its program is converted at the
merchant's exchange rate in force that day; without one it stays unattributed (reason currency_mismatch).

Repeated orders are one conversion (unique merchant + order id); concurrent ones race on that constraint.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from programs.identity import normalize_email
from programs.models import Participant, Program
from referral_saas import prepared
from referral_saas.celery import conversions_key, enqueue_coalesced_on_commit, enqueue_on_commit
from referral_saas.errors import Unprocessable
from referral_saas.money import MAX_AMOUNT, convert
from tracking.clicks import click_ingest_early, hash_ip, pending_click
from tracking.exchange_rates import exchange_rate_for
from tracking.models import Click, Conversion, Referral, ReferralCode
from tracking.selectors import attribution_facts, code_lookup

Reason = Referral.Reason


@dataclass
class Customer:
    external_id: str | None
    email: str | None

    @property
    def email_normalized(self) -> str | None:
        return normalize_email(self.email)

    def match(self, ext_field: str, email_field: str) -> Q:
        q = Q(pk__in=[])
        if self.external_id:
            q |= Q(**{ext_field: self.external_id})
        if self.email_normalized:
            q |= Q(**{email_field: self.email_normalized})
        return q


@dataclass
class Touch:
    """A link click or a typed code: the referrer's code, and when the friend touched it."""

    code: ReferralCode
    at: datetime
    click: Click | None = None


# --- resolving what the shop sent ---------------------------------------------------------------------------------


def _touch_from_click(*, merchant, livemode: bool, click_id: str) -> Touch:
    try:
        click_uuid = uuid.UUID(str(click_id))
    except ValueError:
        raise Unprocessable(
            _("Unknown click id."), code="unknown_click", fields={"click_id": [_("Unknown click id.")]}
        ) from None
    clicks = (
        Click.objects.for_merchant(merchant)
        .select_related("code__program__merchant", "code__participant")
        .filter(click_id=click_uuid, livemode=livemode)
    )
    click = clicks.first()
    if click is None:
        buffered = pending_click(click_uuid.hex)  # clicked seconds ago: still on its way to PostgreSQL
        if buffered and int(buffered["merchant_id"]) == merchant.pk and bool(int(buffered["livemode"])) == livemode:
            click_ingest_early(buffered)  # so the order links to the click, and fraud scoring sees all of it
            click = clicks.first()
    if click is not None:
        return Touch(code=click.code, at=click.occurred_at, click=click)
    raise Unprocessable(_("Unknown click id."), code="unknown_click", fields={"click_id": [_("Unknown click id.")]})


def _unknown_code() -> Unprocessable:
    return Unprocessable(
        _("Unknown referral code."), code="unknown_code", fields={"code": [_("Unknown referral code.")]}
    )


def _touch_from_code(*, merchant, livemode: bool, code: str, at: datetime) -> Touch:
    row = code_lookup(merchant=merchant, livemode=livemode, code=code)
    if row is None:
        raise _unknown_code()
    return Touch(code=row, at=at)


def _explicit_touch(*, merchant, livemode: bool, code: str | None, click_id: str | None, at: datetime) -> Touch | None:
    touch_by_click = _touch_from_click(merchant=merchant, livemode=livemode, click_id=click_id) if click_id else None
    touch_by_code = _touch_from_code(merchant=merchant, livemode=livemode, code=code, at=at) if code else None
    return touch_by_click or touch_by_code


def _existing_referral(*, merchant, livemode: bool, customer: Customer, program: Program | None) -> Referral | None:
    scope = Referral.objects.for_merchant(merchant).filter(
        customer.match("referee_external_id", "referee_email_normalized"), livemode=livemode
    )
    if program is not None:
        scope = scope.filter(program=program)
    # Most orders come from customers nobody referred: find the id cheaply, load the related rows only if found.
    # A live referral first, else a rejected one: a friend rejected once stays rejected (never reopened).
    rejected_last = Case(When(status=Referral.Status.REJECTED, then=Value(1)), default=Value(0))
    found = scope.order_by(rejected_last, "created_at").values_list("pk", flat=True).first()
    if found is None:
        return None
    return (
        Referral.objects.for_merchant(merchant)
        .select_related("code__program__merchant", "code__participant", "program__merchant", "referrer", "click")
        .get(pk=found)
    )


def _refusal(touch: Touch, customer: Customer) -> str | None:
    """Why this touch can never refer this customer (self-referral, blocked referrer or code), else None."""
    if _is_self_referral(touch.code.participant, customer):
        return Reason.SELF_REFERRAL
    if touch.code.participant.status != Participant.Status.ACTIVE or not touch.code.is_active:
        return Reason.BLOCKED_REFERRER
    return None


def _is_self_referral(referrer: Participant, customer: Customer) -> bool:
    return bool(
        (customer.external_id and referrer.external_id == customer.external_id)
        or (customer.email_normalized and referrer.email_normalized == customer.email_normalized)
    )


# --- decisions ----------------------------------------------------------------------------------------------------


@dataclass
class Decision:
    status: str  # Conversion.Status
    reason: str = ""
    touch: Touch | None = None
    referral: Referral | None = None  # an existing referral the order belongs to


@dataclass
class OrderFacts:
    """An order as the shop reported it, normalised."""

    merchant: object
    livemode: bool
    order_id: str
    amount: Decimal
    currency: str
    customer: Customer
    code: str | None
    occurred_at: datetime
    now: datetime
    ip: str | None
    user_agent: str
    payment_fingerprint: str
    address_hash: str
    device_id: str
    ga_client_id: str = ""  # the buyer's Google Analytics client id (referral.js, from the shop's _ga cookie)


def _decide(
    *, explicit: Touch | None, existing: Referral | None, customer: Customer, occurred_at: datetime, is_new: bool
) -> Decision:
    """The attribution rules, on facts already gathered (no queries)."""
    if existing is None and explicit is None:
        return Decision(Conversion.Status.UNATTRIBUTED)
    if existing is not None and existing.status == Referral.Status.REJECTED:
        # A friend whose referral was rejected (self-referral, fraud, the merchant's call) stays rejected.
        kept = Touch(existing.code, existing.touched_at, existing.click)
        return Decision(Conversion.Status.REJECTED, existing.rejection_reason, kept, existing)

    if explicit and existing:
        keep_first = (
            explicit.code.program.attribution_model == Program.AttributionModel.FIRST_TOUCH
            or existing.status == Referral.Status.CONVERTED
            or _refusal(explicit, customer) is not None  # a touch that would be refused takes nothing over
        )
        touch = Touch(existing.code, existing.touched_at, existing.click) if keep_first else explicit
        referral = existing
    elif explicit:
        touch, referral = explicit, None
    else:
        touch, referral = Touch(existing.code, existing.touched_at, existing.click), existing
    program = touch.code.program

    if not program.is_live(occurred_at):
        return Decision(Conversion.Status.UNATTRIBUTED, Reason.PROGRAM_INACTIVE, touch, referral)
    if occurred_at > touch.at + timedelta(days=program.attribution_window_days):
        return Decision(Conversion.Status.UNATTRIBUTED, Reason.OUTSIDE_WINDOW, touch, referral)
    refusal = _refusal(touch, customer)
    if refusal is not None:
        return Decision(Conversion.Status.REJECTED, refusal, touch, referral)
    if program.new_customers_only and not is_new:
        return Decision(Conversion.Status.REJECTED, Reason.EXISTING_CUSTOMER, touch, referral)
    return Decision(Conversion.Status.ATTRIBUTED, "", touch, referral)


def _upsert_referral(
    *,
    merchant,
    livemode: bool,
    customer: Customer,
    touch: Touch,
    existing: Referral | None,
    status: str,
    reason: str,
    now: datetime,
    referee_id: int | None,
) -> Referral:
    """Create the friend's referral, or move it to `touch` (last touch) / mark it converted or rejected.

    A concurrent insert of the same friend is caught by a savepoint here, and the row that won is moved instead.
    The returned row's `was_created` says whether this call inserted it (of simultaneous sign-ups of one friend, one
    did). (An order's first referral is written with the order instead: _record.)
    """
    fields = _touch_fields(touch)
    if existing is None:
        new = _new_referral(
            merchant=merchant, livemode=livemode, customer=customer, touch=touch, status=status, reason=reason,
            now=now, referee_id=referee_id,
        )  # fmt: skip
        try:
            with transaction.atomic():
                return prepared.insert(new)
        except IntegrityError:  # the same friend arrived concurrently (another order, or a sign-up)
            # _existing_referral finds every status, so the row that won the race is found.
            existing = _existing_referral(
                merchant=merchant, livemode=livemode, customer=customer, program=touch.code.program
            )
            if existing is None:  # pragma: no cover - the conflicting row must exist
                raise
    locked = Referral.objects.for_merchant(merchant).select_for_update().get(pk=existing.pk)
    locked.was_created = False
    if locked.status in (Referral.Status.CONVERTED, Referral.Status.REJECTED):
        return locked  # a converted referral keeps its referrer; a rejected one is never reopened
    if locked.code_id != touch.code.pk:
        for name, value in fields.items():
            setattr(locked, name, value)
    locked.status, locked.rejection_reason = status, reason
    if status == Referral.Status.SIGNED_UP and locked.signed_up_at is None:
        locked.signed_up_at = now
    if status == Referral.Status.CONVERTED:
        locked.converted_at = now
    locked.save()
    return locked


def _touch_fields(touch: Touch) -> dict:
    """What a referral takes from the touch that brought the friend."""
    return {
        "program": touch.code.program,
        "variant_id": touch.code.variant_id,
        "referrer": touch.code.participant,
        "code": touch.code,
        "click": touch.click,
        "touched_at": touch.at,
    }


def _new_referral(
    *, merchant, livemode: bool, customer: Customer, touch: Touch, status: str, reason: str, now: datetime,
    referee_id: int | None,
) -> Referral:  # fmt: skip
    """The friend's first referral, not saved yet (`was_created` set)."""
    new = Referral(
        merchant=merchant,
        livemode=livemode,
        referee_id=referee_id,
        referee_external_id=customer.external_id,
        referee_email=customer.email,
        referee_email_normalized=customer.email_normalized,
        status=status,
        rejection_reason=reason,
        signed_up_at=now if status == Referral.Status.SIGNED_UP else None,
        converted_at=now if status == Referral.Status.CONVERTED else None,
        **_touch_fields(touch),
    )
    new.was_created = True
    return new


def _stored(merchant, livemode: bool, order_id: str) -> Conversion | None:
    return (
        Conversion.objects.for_merchant(merchant)
        .select_related("program", "referral__referrer", "referral__code")
        .filter(livemode=livemode, order_id=order_id)
        .first()
    )


# --- services -----------------------------------------------------------------------------------------------------


def conversion_record(
    *,
    merchant,
    livemode: bool,
    order_id: str,
    amount: Decimal,
    currency: str,
    customer_external_id: str | None = None,
    customer_email: str | None = None,
    code: str | None = None,
    click_id: str | None = None,
    occurred_at: datetime | None = None,
    ip: str | None = None,
    user_agent: str = "",
    payment_fingerprint: str = "",
    address_hash: str = "",
    device_id: str = "",
    ga_client_id: str = "",
) -> tuple[Conversion, bool]:
    """Record an order and attribute it. Returns (conversion, created); the same order id again returns the first."""
    now = timezone.now()
    occurred_at = occurred_at or now
    customer = Customer(
        external_id=(customer_external_id or "").strip() or None, email=(customer_email or "").strip() or None
    )
    # The click is looked up here; the code is read by attribution_facts' statement along with the rest.
    try:
        by_click = _touch_from_click(merchant=merchant, livemode=livemode, click_id=click_id) if click_id else None
        refused = None
    except Unprocessable as exc:  # only after checking for a repeat of an order we already have
        by_click, refused = None, exc
    order = OrderFacts(
        merchant, livemode, order_id, amount, currency, customer, code, occurred_at, now, ip, user_agent,
        payment_fingerprint, address_hash, device_id, ga_client_id=ga_client_id or "",
    )  # fmt: skip
    for attempt in (1, 2):
        facts = attribution_facts(
            merchant=merchant,
            livemode=livemode,
            order_id=order_id,
            external_id=customer.external_id,
            email_normalized=customer.email_normalized,
            program_id=by_click.code.program_id if by_click else None,
            before=occurred_at,
            code=code,
        )
        if facts.existing_order_id is not None:
            return _stored(merchant, livemode, order_id), False
        if refused is None and code and facts.code is None:
            refused = _unknown_code()
        if refused is not None:
            raise refused
        # The click wins over the code (a code sent along with it must still exist).
        explicit = by_click or (Touch(code=facts.code, at=occurred_at) if facts.code else None)
        try:
            conversion = _record(order=order, explicit=explicit, facts=facts)
        except IntegrityError:
            if transaction.get_connection().needs_rollback:
                raise  # not a race the savepoint caught: the caller's transaction is lost, nothing to look at
            conversion = None  # a concurrent insert won a race the statements below do not skip (the savepoint's)
        if conversion is not None:
            return conversion, True
        # A concurrent request stored this order first (unique merchant + order id): nothing of ours was kept, and
        # the order is theirs. Or it opened this friend's first referral: decide again, with it.
        winner = _stored(merchant, livemode, order_id)
        if winner is not None:
            return winner, False
        if attempt == 2:
            raise IntegrityError(f"order {order_id!r}: a concurrent request won twice and stored nothing")
    raise AssertionError("unreachable")  # pragma: no cover


def _record(*, order: OrderFacts, explicit: Touch | None, facts) -> Conversion | None:
    """Decide, open or update the friend's referral, and insert the conversion: all or nothing. None (nothing
    kept) when a concurrent request got there first: it stored this order id, or opened this friend's referral.

    The usual order (no referral, or the friend's first) is one statement that skips what a unique constraint
    refuses (prepared.insert_unless_taken): no savepoint, no error to roll back. An order that moves an existing
    referral does so in a savepoint, which goes back with the referral's change when the order id is taken."""
    existing = _referral_by_id(merchant=order.merchant, referral_id=facts.referral_id)
    is_new = not facts.returning_customer
    decision = _decide(
        explicit=explicit, existing=existing, customer=order.customer, occurred_at=order.occurred_at, is_new=is_new
    )
    in_program = _in_program_currency(order, decision.touch.code.program) if decision.touch else None
    if decision.touch and in_program is None:
        # In another currency than the program, and the merchant has no rate for it: stored, not attributed.
        decision = Decision(Conversion.Status.UNATTRIBUTED, Reason.CURRENCY_MISMATCH)
    program_amount, exchange_rate = in_program or (None, None)
    conversion = Conversion(
        merchant=order.merchant,
        livemode=order.livemode,
        order_id=order.order_id,
        amount=order.amount,
        currency=order.currency,
        program_amount=program_amount,
        program_currency=decision.touch.code.program.currency if program_amount is not None else "",
        exchange_rate=exchange_rate,
        customer_external_id=order.customer.external_id,
        customer_email=order.customer.email,
        customer_email_normalized=order.customer.email_normalized,
        status=decision.status,
        rejection_reason=decision.reason,
        program=decision.touch.code.program if decision.touch else None,
        click=decision.touch.click if decision.touch else None,
        code_given=(order.code or "")[:32],
        is_new_customer=is_new,
        occurred_at=order.occurred_at,
        ip=order.ip or None,
        ip_hash=hash_ip(order.ip),
        user_agent=(order.user_agent or "")[:512],
        payment_fingerprint=(order.payment_fingerprint or "")[:128],
        address_hash=(order.address_hash or "")[:128],
        device_id=(order.device_id or "")[:128],
        ga_client_id=(order.ga_client_id or "")[:64],
    )
    referral_status = (
        Referral.Status.CONVERTED if decision.status == Conversion.Status.ATTRIBUTED else Referral.Status.REJECTED
    )
    if not decision.touch or decision.status == Conversion.Status.UNATTRIBUTED:
        if prepared.insert_unless_taken(conversion)[1] is None:
            return None
    elif decision.referral is None:  # the friend's first referral, and the order, in one statement
        referral = _new_referral(
            merchant=order.merchant, livemode=order.livemode, customer=order.customer, touch=decision.touch,
            status=referral_status, reason=decision.reason, now=order.now, referee_id=facts.referee_participant_id,
        )  # fmt: skip
        with transaction.atomic(savepoint=False):  # its own transaction when the caller has none
            referral_id, conversion_id = prepared.insert_unless_taken(conversion, parent=referral, via="referral")
            if conversion_id is None:
                if referral_id is not None:  # the order id was taken meanwhile: the referral goes with the order
                    _forget_new_referral(merchant=order.merchant, referral_id=referral_id)
                return None
    else:
        with transaction.atomic():  # a savepoint: the referral's change goes back if the order id is taken
            conversion.referral = _upsert_referral(
                merchant=order.merchant,
                livemode=order.livemode,
                customer=order.customer,
                touch=decision.touch,
                existing=decision.referral,
                status=referral_status,
                reason=decision.reason,
                now=order.now,
                referee_id=facts.referee_participant_id,
            )
            prepared.insert(conversion)  # a taken order id raises IntegrityError: the caller looks for the winner
    if conversion.referral_id and (
        conversion.status == Conversion.Status.ATTRIBUTED or conversion.rejection_reason == Reason.FRAUD
    ):  # fraud scoring and rewards, by a worker (an order of a friend rejected as fraud is scored for review too);
        # one message for the orders that arrive while it waits: its task decides them in one batch
        enqueue_coalesced_on_commit(
            "rewards.process_conversion",
            key=conversions_key(order.merchant.pk),
            merchant_id=order.merchant.pk,
            conversion_id=conversion.pk,
        )
    return conversion


def _forget_new_referral(*, merchant, referral_id: int) -> None:
    """Delete the referral this transaction has just inserted (nothing can point at it yet)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {Referral._meta.db_table} WHERE merchant_id = %s AND id = %s",  # noqa: S608 - the model's table
            [merchant.pk, referral_id],
        )


def _in_program_currency(order: OrderFacts, program: Program) -> tuple[Decimal, Decimal | None] | None:
    """(the order's amount in the program's currency, the rate used or None), or None when it cannot be converted:
    the merchant has no rate from the order's currency to the program's in force that day, or the converted amount
    is beyond what an order may be."""
    if order.currency == program.currency:
        return order.amount, None
    rate = exchange_rate_for(
        merchant=order.merchant, base_currency=order.currency, quote_currency=program.currency, at=order.occurred_at
    )
    if rate is None:
        return None
    converted = convert(order.amount, rate, program.currency)
    if converted > MAX_AMOUNT:
        return None
    return converted, rate


def referral_record_signup(
    *,
    merchant,
    livemode: bool,
    customer_external_id: str | None,
    customer_email: str | None,
    code: str | None = None,
    click_id: str | None = None,
    ga_client_id: str = "",
) -> tuple[Referral, bool]:
    """A referred friend signed up at the shop. Returns (referral, created); the friend again returns theirs."""
    now = timezone.now()
    customer = Customer(
        external_id=(customer_external_id or "").strip() or None, email=(customer_email or "").strip() or None
    )
    touch = _explicit_touch(merchant=merchant, livemode=livemode, code=code, click_id=click_id, at=now)
    program = touch.code.program
    if not program.is_live(now):
        raise Unprocessable(_("This program is not running."), code="program_inactive")
    if now > touch.at + timedelta(days=program.attribution_window_days):
        raise Unprocessable(_("The click is older than the program's attribution window."), code="outside_window")
    existing = _existing_referral(merchant=merchant, livemode=livemode, customer=customer, program=program)
    refusal = _refusal(touch, customer)
    if existing is not None and (
        program.attribution_model == Program.AttributionModel.FIRST_TOUCH
        or existing.code_id == touch.code.pk
        or existing.status in (Referral.Status.REJECTED, Referral.Status.CONVERTED)
        or refusal is not None  # a refused touch never takes a friend over (last touch)
    ):
        return existing, False
    status = Referral.Status.REJECTED if refusal else Referral.Status.SIGNED_UP
    reason = refusal or ""
    with transaction.atomic():
        referral = _upsert_referral(
            merchant=merchant,
            livemode=livemode,
            customer=customer,
            touch=touch,
            existing=existing,
            status=status,
            reason=reason,
            now=now,
            referee_id=_referee_participant_id(merchant=merchant, livemode=livemode, customer=customer),
        )
        if ga_client_id and referral.ga_client_id != ga_client_id[:64]:  # for Google Analytics 4 (integrations)
            referral.ga_client_id = ga_client_id[:64]
            Referral.objects.for_merchant(merchant).filter(pk=referral.pk).update(ga_client_id=referral.ga_client_id)
        if status == Referral.Status.SIGNED_UP:  # the friend's welcome offer, by a worker
            enqueue_on_commit("rewards.process_referral", merchant_id=merchant.pk, referral_id=referral.pk)
        if referral.referee_id and status == Referral.Status.SIGNED_UP:
            Participant.objects.for_merchant(merchant).filter(pk=referral.referee_id, referred_by__isnull=True).update(
                referred_by=referral
            )
    return referral, referral.was_created


def _referee_participant_id(*, merchant, livemode: bool, customer: Customer) -> int | None:
    if not (customer.external_id or customer.email_normalized):
        return None
    return (
        Participant.objects.for_merchant(merchant)
        .filter(customer.match("external_id", "email_normalized"), livemode=livemode)
        .values_list("pk", flat=True)
        .first()
    )


def _referral_by_id(*, merchant, referral_id: int | None) -> Referral | None:
    if referral_id is None:
        return None
    return (
        Referral.objects.for_merchant(merchant)
        .select_related("code__program__merchant", "code__participant", "code__variant", "program", "referrer", "click")
        .get(pk=referral_id)
    )
