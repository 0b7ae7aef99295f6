"""manage.py createapikey --merchant <slug> [--name N] [--mode live|test]"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from referral_saas.errors import ApplicationError
from referral_saas.tenancy import services
from referral_saas.tenancy.models import ApiKey, Merchant


class Command(BaseCommand):
    help = "Create an API key for a merchant and print it (it is shown once)."

    def add_arguments(self, parser):
        parser.add_argument("--merchant", required=True, help="The merchant's slug.")
        parser.add_argument("--name", default="API key")
        parser.add_argument("--mode", default=ApiKey.Mode.LIVE, choices=ApiKey.Mode.values)

    def handle(self, *args, **opts):
        merchant = Merchant.objects.filter(slug=opts["merchant"]).first()
        if merchant is None:
            raise CommandError(f"No merchant with slug {opts['merchant']!r}.")
        try:
            _api_key, plaintext = services.apikey_create(merchant=merchant, name=opts["name"], mode=opts["mode"])
        except ApplicationError as exc:
            details = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in exc.fields.items())
            raise CommandError(f"{exc.message} {details}".strip()) from exc
        self.stdout.write(plaintext)
