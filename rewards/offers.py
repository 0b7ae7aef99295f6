"""The offers people read, generated from the reward rules that pay them.

"What the referrer gets" and "what the friend gets" are written once, as reward rules (kind, amount or percentage,
minimum order, hold, caps, milestones, per A/B variant). The portal, the invitation emails, the share texts and the
shop's code check all show `offers_for`, which says in the reader's language what those rules pay. The merchant's
own wording (the program's, a variant's or a language's text) replaces the generated one where it is set, in the
language it is written in; `offer_text_mismatches` checks it against the rules (the admin's guardrails).
"""

from __future__ import annotations

import re
from decimal import Decimal

from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from programs.models import Program, ProgramText, ProgramVariant
from referral_saas.money import format_money
from rewards.models import MONEY_KINDS, Kind, RewardRule, Side
from rewards.selectors import program_rules, rule_in_words, rules_for

FIELDS = {Side.REFERRER: "referrer_offer", Side.REFEREE: "referee_offer"}
ALL_TRIGGERS = tuple(RewardRule.Trigger.values)


def _plain_number(value: Decimal) -> str:
    """12 -> "12", 12.50 -> "12.5": a percentage as people write it."""
    return format(value.normalize(), "f")


def _what(rule: RewardRule, currency: str) -> str:
    """What one payment of the rule is, in words: "a 15% off coupon", "10.00 USD in store credit", "10% of the
    order in store credit (at most 20.00 USD)"."""
    if rule.value_type == RewardRule.ValueType.PERCENT_OF_ORDER and rule.kind in (*MONEY_KINDS, Kind.POINTS):
        percent = _plain_number(rule.value)
        what = {
            Kind.AMOUNT_COUPON: _("a coupon worth %(percent)s%% of the order"),
            Kind.STORE_CREDIT: _("%(percent)s%% of the order in store credit"),
            Kind.CASH: _("%(percent)s%% of the order in cash"),
            Kind.POINTS: _("points worth %(percent)s%% of the order"),
        }[rule.kind] % {"percent": percent}
        if rule.max_value is not None:
            cap = str(int(rule.max_value)) if rule.kind == Kind.POINTS else format_money(rule.max_value, currency)
            what += " " + _("(at most %(cap)s)") % {"cap": cap}
        return what
    return rule_in_words(rule, currency)


def rule_offer(rule: RewardRule, currency: str) -> str:
    """One rule as a line of the offer, in the active language: what, when, and the limits that change it."""
    what = _what(rule, currency)
    trigger = rule.trigger
    referrer = rule.side == Side.REFERRER
    count = rule.milestone if trigger == RewardRule.Trigger.MILESTONE else rule.max_purchases
    if trigger == RewardRule.Trigger.EACH_PURCHASE and count == 1:
        trigger = RewardRule.Trigger.FIRST_PURCHASE  # "each purchase, up to 1" pays the first one
    if trigger == RewardRule.Trigger.MILESTONE:
        text = ngettext(
            "%(what)s once %(count)d friend has bought", "%(what)s once %(count)d friends have bought", count or 1
        )
    elif trigger == RewardRule.Trigger.EACH_PURCHASE and count:
        text = (
            _("%(what)s for each of a friend's first %(count)d purchases")
            if referrer
            else _("%(what)s for each of the first %(count)d purchases")
        )
    elif referrer:
        text = {
            RewardRule.Trigger.SIGNUP: _("%(what)s for each friend who signs up"),
            RewardRule.Trigger.FIRST_PURCHASE: _("%(what)s for each friend's first purchase"),
        }.get(trigger, _("%(what)s for every purchase a friend makes"))
    else:
        text = {
            RewardRule.Trigger.SIGNUP: _("%(what)s on signing up"),
            RewardRule.Trigger.FIRST_PURCHASE: _("%(what)s after the first purchase"),
        }.get(trigger, _("%(what)s with every purchase"))
    text = text % {"what": what, "count": count or 1}
    limits = []
    if rule.min_order_value is not None and trigger != RewardRule.Trigger.SIGNUP:
        limits.append(_("orders of at least %(amount)s") % {"amount": format_money(rule.min_order_value, currency)})
    if rule.hold_days and trigger != RewardRule.Trigger.SIGNUP:
        limits.append(
            ngettext("paid %(days)d day later", "paid %(days)d days later", rule.hold_days) % {"days": rule.hold_days}
        )
    if referrer and rule.cap_total:
        limits.append(ngettext("up to %(count)d reward", "up to %(count)d rewards", rule.cap_total) % {
            "count": rule.cap_total
        })  # fmt: skip
    if referrer and rule.cap_per_month:
        limits.append(_("up to %(count)d a month") % {"count": rule.cap_per_month})
    if rule.valid_until is not None:
        limits.append(_("until %(date)s") % {"date": date_format(timezone.localtime(rule.valid_until), "DATE_FORMAT")})
    if limits:
        text += " (" + ", ".join(limits) + ")"
    return text


def generated_offers(*, program: Program, variant_id: int | None, rules: list | None = None) -> dict[str, str]:
    """What the rules that pay a participant of `variant_id` (the variant's own where it has them) give each side
    now, in the active language: {"referrer_offer": ..., "referee_offer": ...}; "" for a side nobody pays."""
    rules = rules_for(program=program, variant_id=variant_id, triggers=ALL_TRIGGERS, at=timezone.now(), rules=rules)
    milestone_last = sorted(rules, key=lambda rule: (rule.trigger == RewardRule.Trigger.MILESTONE, rule.milestone or 0))
    return {
        field: "; ".join(rule_offer(rule, program.currency) for rule in milestone_last if rule.side == side)
        for side, field in FIELDS.items()
    }


def _variant_sides(rules: list, variant: ProgramVariant | None) -> set[str]:
    """The sides the variant pays with rules of its own: the program's wording does not describe what they get."""
    if variant is None:
        return set()
    return {rule.side for rule in rules if rule.variant_id == variant.pk}


def _own_texts(*, program: Program, variant: ProgramVariant | None, language: str, variant_only: set[str]) -> dict:
    """The merchant's own wording of each offer in `language`, "" where they wrote none in it: the variant's text
    (in the program's default language), else the text they wrote in that language, else (in the program's default
    language) the program's own. For a side the variant pays with rules of its own, only the variant's text: the
    program's wording says what the other arm gets."""
    text = ProgramText.objects.for_merchant(program.merchant).filter(program=program, language=language).first()
    own = {}
    for side, field in FIELDS.items():
        default = language == program.default_language
        mine = getattr(variant, field) if variant is not None and default else ""
        if side in variant_only:
            own[field] = mine
            continue
        written = getattr(text, field) if text is not None else ""
        own[field] = mine or written or (getattr(program, field) if default else "")
    return own


def offers_for(*, program: Program, variant: ProgramVariant | None, language: str | None) -> dict[str, str]:
    """What the referrer and the friend get through a code of `variant`, as people read it in `language` (default:
    the program's): the merchant's own wording in that language where they wrote one, else the text generated from
    the rules that pay it (the variant's own rules where it has them), else (no rule pays that side: the guardrails
    warn) the merchant's wording in the program's language. A variant's or the program's own text is in the program's
    default language, so a reader in another language gets the generated text rather than a foreign one; an A/B arm
    with its own rules is never described by the program's wording."""
    language = language or program.default_language
    rules = program_rules(program)  # once: what the variant covers, and what the generated text says
    variant_only = _variant_sides(rules, variant)
    own = _own_texts(program=program, variant=variant, language=language, variant_only=variant_only)
    if all(own.values()):
        return own
    with translation.override(language):
        variant_id = variant.pk if variant is not None else None
        generated = generated_offers(program=program, variant_id=variant_id, rules=rules)
    offers = {field: own[field] or generated[field] for field in FIELDS.values()}
    if not all(offers.values()) and language != program.default_language:
        offers = {
            field: offers[field]
            or (getattr(variant, field) if variant is not None else "")
            or ("" if side in variant_only else getattr(program, field))
            for side, field in FIELDS.items()
        }
    return offers


# --- the guardrail: the merchant's wording against the rules ------------------------------------------------------

NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def _numbers(text: str) -> set[Decimal]:
    return {Decimal(match.replace(",", ".")) for match in NUMBER.findall(text)}


def _rule_numbers(rule: RewardRule) -> set[Decimal]:
    numbers = {rule.value}
    for extra in (rule.max_value, rule.min_order_value, rule.milestone, rule.max_purchases, rule.hold_days):
        if extra is not None:
            numbers.add(Decimal(extra))
    return {number.normalize() for number in numbers}


def offer_text_mismatches(*, program: Program) -> list[str]:
    """Where the merchant's own offer wording and the rules that pay disagree (in the active language):

    - a text for a side no rule pays ("a 10 EUR voucher" with no referrer rule);
    - a text that names an amount none of that side's rules has ("$10 credit" when the rule pays 15).
    Texts that name no number ("a surprise gift") are not second-guessed."""
    rules = program_rules(program)
    texts: list[tuple[str, int | None, str, str]] = []  # (where, variant id, side, text)
    for side, field in FIELDS.items():
        texts.append((program.name, None, side, getattr(program, field)))
        for variant in program.variants.all():
            texts.append((f"{program.name} / {variant.name}", variant.pk, side, getattr(variant, field)))
        for text in ProgramText.objects.for_merchant(program.merchant).filter(program=program):
            texts.append((f"{program.name} ({text.language})", None, side, getattr(text, field)))
    warnings = []
    for where, variant_id, side, text in texts:
        if not text:
            continue
        paying = [
            rule
            for rule in rules_for(program=program, variant_id=variant_id, triggers=ALL_TRIGGERS, at=timezone.now(),
                                  rules=rules)
            if rule.side == side
        ]  # fmt: skip
        label = Side(side).label.lower()
        if not paying:
            warnings.append(
                _("%(where)s promises the %(side)s “%(text)s”, but no active reward rule pays the %(side)s.")
                % {"where": where, "side": label, "text": text}
            )
            continue
        allowed = set().union(*(_rule_numbers(rule) for rule in paying))
        stray = sorted(number for number in _numbers(text) if number.normalize() not in allowed)
        if stray:
            generated = "; ".join(rule_offer(rule, program.currency) for rule in paying)
            warnings.append(
                _(
                    "%(where)s promises the %(side)s “%(text)s”, but its rules pay: %(generated)s. Correct the rule "
                    "or the text, or clear the text to show the one generated from the rules."
                )
                % {"where": where, "side": label, "text": text, "generated": generated}
            )
    return warnings
