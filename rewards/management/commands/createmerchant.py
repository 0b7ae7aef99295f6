"""manage.py createmerchant --name "Shop" --owner-email a@b.c [--password ...] [--json]

A command of the rewards app because --demo-program writes a program with its reward rules: a door on top of the
apps it uses (tenancy, programs, rewards)."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from programs.models import Program, ProgramText
from referral_saas.errors import ApplicationError
from referral_saas.tenancy import services
from referral_saas.tenancy.models import ApiKey
from rewards.models import Kind, RewardRule, Side
from rewards.services import reward_rule_create


class Command(BaseCommand):
    help = "Create a merchant, its owner (verified email) and a live + a test API key, and print them."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--password", help="The owner's password (omit to let them reset it by email).")
        parser.add_argument("--currency", default="USD")
        parser.add_argument("--timezone", default="UTC")
        parser.add_argument("--language", default="en", choices=["en", "pl", "ro", "ru"])
        parser.add_argument("--demo-program", action="store_true", help="Also create an active program 'friends'.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object (for scripts).")

    def handle(self, *args, **opts):
        try:
            result = create_merchant_with_keys(
                name=opts["name"],
                owner_email=opts["owner_email"],
                password=opts["password"],
                currency=opts["currency"],
                timezone_name=opts["timezone"],
                language=opts["language"],
                demo_program=opts["demo_program"],
            )
        except ApplicationError as exc:
            details = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in exc.fields.items())
            raise CommandError(f"{exc.message} {details}".strip()) from exc
        if opts["json"]:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(self.style.SUCCESS(f"Merchant {result['merchant']} created."))
        self.stdout.write(f"Owner:         {opts['owner_email']}")
        self.stdout.write(f"Live API key:  {result['live_key']}")
        self.stdout.write(f"Test API key:  {result['test_key']}")
        if result["program"]:
            self.stdout.write(f"Program:       {result['program']} (active)")
        self.stdout.write("Keys are shown once; store them now.")


@transaction.atomic
def create_merchant_with_keys(
    *,
    name: str,
    owner_email: str,
    password: str | None,
    currency: str,
    timezone_name: str,
    language: str,
    demo_program: bool = False,
) -> dict:
    merchant = services.merchant_create(
        name=name,
        owner_email=owner_email,
        owner_password=password,
        default_currency=currency,
        timezone_name=timezone_name,
        default_language=language,
        email_verified=True,
    )
    _live, live_key = services.apikey_create(merchant=merchant, name="Live key", mode=ApiKey.Mode.LIVE)
    _test, test_key = services.apikey_create(merchant=merchant, name="Test key", mode=ApiKey.Mode.TEST)
    program = create_demo_program(merchant=merchant) if demo_program else None
    return {
        "merchant": merchant.slug,
        "live_key": live_key,
        "test_key": test_key,
        "program": program.slug if program else None,
    }


def create_demo_program(*, merchant):
    """An active double-sided program that lands on the demo storefront, so the loop works out of the box."""
    program = Program.objects.for_merchant(merchant).create(
        name="Bring a friend",
        slug="friends",
        status=Program.Status.ACTIVE,
        starts_on=timezone.localdate(),
        currency=merchant.default_currency,
        default_language=merchant.default_language,
        landing_url=f"{settings.SITE_URL}/demo-shop/",
        referrer_offer="10% of your friend's first order, as a coupon",
        referee_offer="10% off your first order",
        terms="Rewards are for friends who are new customers. One reward per friend. Self-referrals do not count.",
        good_fit="Friends and family who would enjoy our products.",
    )
    for language, texts in DEMO_TEXTS.items():
        ProgramText.objects.for_merchant(merchant).create(program=program, language=language, **texts)
    # Double-sided, no hold: a new user sees the whole loop (reward decided, issued, emailed) at once. Written
    # through the rules service, which checks them as the admin does (a refusal is a CommandError, nothing written).
    reward_rule_create(
        merchant=merchant,
        program=program,
        name="Referrer: 10% of the friend's first order",
        side=Side.REFERRER,
        trigger=RewardRule.Trigger.FIRST_PURCHASE,
        kind=Kind.AMOUNT_COUPON,
        value_type=RewardRule.ValueType.PERCENT_OF_ORDER,
        value=10,
        coupon_prefix="THANKS",
        coupon_valid_days=90,
        hold_days=0,
    )
    reward_rule_create(
        merchant=merchant,
        program=program,
        name="Friend: 10% off the first order",
        side=Side.REFEREE,
        trigger=RewardRule.Trigger.SIGNUP,
        kind=Kind.PERCENT_COUPON,
        value=10,
        coupon_prefix="WELCOME",
        coupon_valid_days=30,
        hold_days=0,
    )
    return program


DEMO_TEXTS = {
    "en": {
        "name": "Bring a friend",
        "referrer_offer": "10% of your friend's first order, as a coupon",
        "referee_offer": "10% off your first order",
        "good_fit": "Friends and family who would enjoy our products.",
        "terms": "Rewards are for friends who are new customers. One reward per friend. Self-referrals do not count.",
    },
    "pl": {
        "name": "Poleć znajomego",
        "referrer_offer": "kupon o wartości 10% pierwszego zamówienia znajomego",
        "referee_offer": "10% zniżki na pierwsze zamówienie",
        "good_fit": "Znajomi i rodzina, którym spodobają się nasze produkty.",
        "terms": "Nagrody przysługują za znajomych, którzy są nowymi klientami. Jedna nagroda za każdego znajomego. "
        "Polecenie samego siebie się nie liczy.",
    },
    "ro": {
        "name": "Recomandă un prieten",
        "referrer_offer": "un cupon în valoare de 10% din prima comandă a prietenului tău",
        "referee_offer": "10% reducere la prima comandă",
        "good_fit": "Prieteni și familie cărora le-ar plăcea produsele noastre.",
        "terms": "Recompensele se acordă pentru prietenii care sunt clienți noi. O recompensă pentru fiecare prieten. "
        "Auto-recomandările nu se iau în calcul.",
    },
    "ru": {
        "name": "Пригласите друга",
        "referrer_offer": "купон на 10% от первого заказа вашего друга",
        "referee_offer": "скидка 10% на первый заказ",
        "good_fit": "Друзья и родные, которым понравятся наши товары.",
        "terms": "Вознаграждение начисляется за друзей, которые ещё не были нашими покупателями. Одно вознаграждение "
        "за каждого друга. Приглашать самого себя нельзя.",
    },
}
