"""manage.py createconnection --merchant SLUG --provider shopify|woocommerce|stripe|klaviyo|mailchimp|hubspot|
salesforce|ga4|zapier --account ACCOUNT --secret SECRET [--token TOKEN] [--base-url URL] [--test] [--json]

Connects a shop or a marketing tool without the admin (scripts, tests): the same service as the admin's "connect"
page. Connecting the same account again replaces the token and rotates the webhook secret (the old one is accepted
a while longer). For a marketing tool `--account` is the Klaviyo account id, Mailchimp audience id, HubSpot portal
id, Salesforce instance URL or GA4 measurement id, and `--secret` its API key / token / API secret.
--json prints {"id", "provider", "webhook_url"}: the URL to give the platform (null for a marketing tool)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from integrations.models import Provider
from integrations.providers import provider_for
from integrations.services import connection_create
from referral_saas.errors import ApplicationError
from referral_saas.tenancy.models import Merchant


class Command(BaseCommand):
    help = "Connect a merchant's shop platform account and print the webhook URL to give the platform."

    def add_arguments(self, parser):
        parser.add_argument("--merchant", required=True, help="The merchant's slug.")
        parser.add_argument("--provider", required=True, choices=Provider.values)
        parser.add_argument("--account", required=True, help="Shop domain, site URL or Stripe account id; a marketing "
                            "tool's account, audience, portal, instance or measurement id.")  # fmt: skip
        parser.add_argument("--secret", required=True, help="The platform's webhook signing secret; a marketing "
                            "tool's API key, token or API secret.")  # fmt: skip
        parser.add_argument("--token", default="", help="The platform's API token (Shopify access token, "
                            "WooCommerce consumer_key:consumer_secret, Stripe restricted key).")  # fmt: skip
        parser.add_argument("--base-url", default="", help="Send every outbound call of this connection here.")
        parser.add_argument("--test", action="store_true", help="A test-mode connection (its orders are test data).")
        parser.add_argument("--json", action="store_true", help="Print one JSON object (for scripts).")

    def handle(self, *args, **opts):
        merchant = Merchant.objects.filter(slug=opts["merchant"]).first()
        if merchant is None:
            raise CommandError(f"No merchant with the slug {opts['merchant']!r}.")
        if opts["provider"] == Provider.ZAPIER:
            raise CommandError("Zapier needs no connection: a Zap subscribes itself with POST /api/v1/hooks and an API "
                               "key (README: Marketing tools -> Zapier).")  # fmt: skip
        try:
            connection, created = connection_create(
                merchant=merchant,
                provider=opts["provider"],
                account=opts["account"],
                secret=opts["secret"],
                credentials=provider_for(opts["provider"]).credentials_from(opts["token"]),
                base_url=opts["base_url"],
                livemode=not opts["test"],
            )
        except ApplicationError as exc:
            details = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in exc.fields.items())
            raise CommandError(f"{exc.message} {details}".strip()) from exc
        webhook_url = None if connection.is_marketing else connection.webhook_url
        result = {"id": connection.pk, "provider": connection.provider, "webhook_url": webhook_url}
        if opts["json"]:
            self.stdout.write(json.dumps(result))
            return
        verb = "connected" if created else "connected again"
        self.stdout.write(self.style.SUCCESS(f"{connection} {verb} (id {connection.pk})."))
        if webhook_url:
            self.stdout.write(f"Webhook URL: {webhook_url}")
