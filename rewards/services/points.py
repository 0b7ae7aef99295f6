"""Points and the catalog, a shop redeeming a coupon, coupon pools, cash payouts."""

from __future__ import annotations

import csv
import io
import unicodedata
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from programs.models import Participant
from referral_saas.api import is_id
from referral_saas.errors import Conflict, NotFound, Unprocessable, ValidationFailed
from referral_saas.money import format_amount
from rewards.models import CatalogItem, Coupon, CouponPool, Kind, LedgerEntry, Reward
from rewards.selectors import cash_due_to, ledger_balance
from rewards.services.issuing import pool_empty_notify, reward_issue
from rewards.services.rules import decimals_error
from rewards.services.transitions import reward_record_created, reward_transition


def points_redeem(*, participant: Participant, item_id: int, actor: str) -> Reward:
    """Spend points on a catalog item: a reward issued on the spot and a negative ledger entry, or 422 when the
    balance is short. The participant row is locked, so concurrent redemptions can never overdraw."""
    merchant = participant.merchant
    item = (
        CatalogItem.objects.for_merchant(merchant)
        .select_related("program__merchant", "pool")
        .filter(pk=int(item_id), active=True)
        .first()
        if is_id(str(item_id))
        else None
    )
    if item is None:
        raise NotFound(_("No such item in the catalog."))
    if participant.status != Participant.Status.ACTIVE:
        raise Unprocessable(_("This participant cannot redeem points."), code="participant_not_active")
    try:
        with transaction.atomic():
            Participant.objects.for_merchant(merchant).select_for_update().filter(pk=participant.pk).first()
            balance = ledger_balance(participant=participant, program=item.program)
            if balance < item.points:
                raise Unprocessable(
                    _("Not enough points: %(balance)s, the item costs %(cost)s.")
                    % {"balance": int(balance), "cost": item.points},
                    code="insufficient_points",
                )
            now = timezone.now()
            unit = item.unit
            reward = Reward.objects.for_merchant(merchant).create(
                livemode=participant.livemode,
                program=item.program,
                catalog_item=item,
                side="referrer",
                participant=participant,
                kind=item.kind,
                unit=unit,
                value=item.value if unit in ("money", "percent") else Decimal(0),
                original_value=item.value if unit in ("money", "percent") else Decimal(0),
                currency=item.program.currency,
                description=item.description or item.name,
                status=Reward.Status.APPROVED,
                hold_until=now,
                approved_at=now,
            )
            reward_record_created(reward=reward, actor=actor)
            LedgerEntry.objects.for_merchant(merchant).create(
                livemode=participant.livemode,
                program=item.program,
                participant=participant,
                account=LedgerEntry.Account.POINTS,
                kind=LedgerEntry.Kind.SPENT,
                amount=-Decimal(item.points),
                reward=reward,
                note=item.name[:300],
            )
            reward = reward_issue(reward=reward, actor=actor)
            if reward.status != Reward.Status.ISSUED:  # e.g. the item's coupon pool is empty: nothing is spent
                raise Conflict(_("This item is out of stock right now; try again later."), code="out_of_stock")
    except Conflict as exc:
        if exc.code == "out_of_stock" and item.pool_id:
            # Everything above was rolled back, the pool's empty flag and email with it: the owners are told here.
            pool_empty_notify(pool_id=item.pool_id, program=item.program)
        raise
    return reward


def reward_redeem(*, reward: Reward, actor: str) -> Reward:
    """The shop used the coupon (issued -> redeemed). Redeeming twice is a 409, an expired coupon a 422."""
    with transaction.atomic():
        locked = Reward.objects.for_merchant(reward.merchant).select_for_update().get(pk=reward.pk)
        if locked.kind in LEDGER_KINDS:
            raise Conflict(
                _("Points, store credit and cash are balances, not coupons: there is nothing to redeem."),
                code="not_redeemable",
            )
        if locked.status == Reward.Status.REDEEMED:
            raise Conflict(_("This reward was already redeemed."), code="already_redeemed")
        if locked.status != Reward.Status.ISSUED:
            raise Conflict(
                _("Only an issued reward can be redeemed; this one is %(status)s.") % {"status": locked.status},
                code="not_redeemable",
            )
        if locked.expires_at and locked.expires_at < timezone.now():
            raise Unprocessable(_("This coupon has expired."), code="expired")
        return reward_transition(reward=locked, to=Reward.Status.REDEEMED, actor=actor)


LEDGER_KINDS = frozenset({Kind.POINTS, Kind.STORE_CREDIT, Kind.CASH})
MAX_POOL_UPLOAD = 100_000
MAX_UPLOAD_LINE = 1000  # characters; a code is at most Coupon.code's 64, so a longer line is no code list


def _is_code_character(char: str) -> bool:
    """Letters, digits, marks, punctuation and symbols: no spaces, control or invisible (format) characters, which
    nobody can type at checkout (and a NUL PostgreSQL cannot even store)."""
    return unicodedata.category(char)[0] not in "CZ"


def _shown(text: str) -> str:
    """A refused code as the error shows it: invisible characters escaped (\\x00, \\u200b), at most 70 characters."""
    return "".join(c if _is_code_character(c) else c.encode("unicode_escape").decode("ascii") for c in text[:70])


def _not_a_code(number: int, text: str) -> ValidationFailed:
    return ValidationFailed(
        fields={"file": [_("Line %(n)d: not a coupon code: %(code)s") % {"n": number, "code": _shown(text)}]}
    )


def pool_upload(*, pool: CouponPool, data: bytes) -> tuple[int, int]:
    """Add codes from a CSV (one code per line, or a column named "code"). Returns (added, skipped duplicates).

    The whole file is checked first: a file that is not UTF-8 text (a NUL means binary, or UTF-16), a line longer
    than any code, or a code with spaces, control or invisible characters or over 64 characters is a form error
    naming the line, and nothing is added. Line ends may be LF, CRLF or a lone CR (Excel for Mac)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed(fields={"file": [_("The file must be UTF-8 text (CSV).")]}) from None
    if "\x00" in text:
        raise ValidationFailed(fields={"file": [_("The file must be UTF-8 text (CSV).")]})
    for number, line in enumerate(io.StringIO(text, newline=None), start=1):
        if len(line) > MAX_UPLOAD_LINE:
            raise _not_a_code(number, line)
    rows = []  # (the line the row starts on, the row): a quoted code can run over several lines
    reader, start = csv.reader(io.StringIO(text, newline=None)), 1
    try:
        for row in reader:
            rows.append((start, row))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ValidationFailed(fields={"file": [_("The file is not valid CSV: %(error)s") % {"error": exc}]}) from None
    if rows and rows[0][1] and rows[0][1][0].strip().lower() == "code":
        rows = rows[1:]
    max_length = Coupon._meta.get_field("code").max_length
    codes = []
    for number, row in rows:
        if not row or not row[0].strip():
            continue
        code = row[0].strip()
        if len(code) > max_length or not all(_is_code_character(char) for char in code):
            raise _not_a_code(number, code)
        codes.append(code)
    if not codes:
        raise ValidationFailed(fields={"file": [_("The file has no codes.")]})
    if len(codes) > MAX_POOL_UPLOAD:
        raise ValidationFailed(fields={"file": [_("At most %(n)d codes per upload.") % {"n": MAX_POOL_UPLOAD}]})
    unique = list(dict.fromkeys(codes))
    scope = Coupon.objects.for_merchant(pool.merchant)
    existing = set(scope.filter(pool=pool, code__in=unique).values_list("code", flat=True))
    new = [Coupon(merchant=pool.merchant, pool=pool, code=c) for c in unique if c not in existing]
    with transaction.atomic():
        Coupon.all_merchants.bulk_create(new, ignore_conflicts=True, batch_size=5000)
    return len(new), len(codes) - len(new)


def cash_payout_record(*, participant: Participant, program, amount: Decimal, user, note: str = "") -> LedgerEntry:
    """The merchant paid out cash: a negative cash entry. The amount is above zero, in the currency's decimals, and
    never more than is due to the person in the program's currency (rewards.selectors.cash_due_to); the participant
    row is locked so two payouts cannot both pass that check."""

    currency = program.currency
    if amount <= 0:
        raise ValidationFailed(fields={"amount": [_("The amount must be greater than zero.")]})
    if message := decimals_error(amount, currency):
        raise ValidationFailed(fields={"amount": [message]})
    with transaction.atomic():
        Participant.objects.for_merchant(participant.merchant).select_for_update().filter(pk=participant.pk).first()
        due = cash_due_to(participant=participant, currency=currency)
        if amount > due:
            raise ValidationFailed(
                fields={
                    "amount": [
                        _("That is more than the %(due)s %(currency)s due.")
                        % {"due": format_amount(due, currency), "currency": currency}
                    ]
                }
            )
        return LedgerEntry.objects.for_merchant(participant.merchant).create(
            livemode=participant.livemode,
            program=program,
            participant=participant,
            account=LedgerEntry.Account.CASH,
            kind=LedgerEntry.Kind.PAYOUT,
            amount=-amount,
            currency=program.currency,
            note=note[:300],
            created_by=user,
        )
