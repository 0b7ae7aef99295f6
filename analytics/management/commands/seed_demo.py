"""manage.py seed_demo: the "Demo Shop" for `make run`, created once with 90 days of history (analytics.demo); its
credentials are printed every time. A command of the analytics app: the history goes through every app below it."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from analytics.demo import demo_rollup, seed_demo_history
from programs.models import Program
from referral_saas.tenancy.models import Merchant
from rewards.management.commands.createmerchant import create_merchant_with_keys

DEMO_EMAIL = "owner@demo.shop"
DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - a published demo login on a local dev database


def credentials_file() -> Path:
    return Path(settings.BASE_DIR) / ".data" / "demo-credentials.json"


class Command(BaseCommand):
    help = "Create the demo merchant with 90 days of history on first run; print its login and API keys."

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-history", action="store_true", help="Create the Demo Shop without its 90 days of history."
        )

    def handle(self, *args, **opts):
        path = credentials_file()
        existing = Merchant.objects.filter(slug="demo-shop").first()
        if existing is None:
            with transaction.atomic():  # the shop and its history, or nothing (the next run tries again)
                result = create_merchant_with_keys(
                    name="Demo Shop",
                    owner_email=DEMO_EMAIL,
                    password=DEMO_PASSWORD,
                    currency="USD",
                    timezone_name="UTC",
                    language="en",
                    demo_program=True,
                )
                merchant = Merchant.objects.get(slug=result["merchant"])
                program = Program.objects.for_merchant(merchant).get(slug=result["program"])
                if not opts["no_history"]:
                    seed_demo_history(merchant=merchant, program=program, progress=self.stdout.write)
            if not opts["no_history"]:
                demo_rollup(merchant=merchant, progress=self.stdout.write)
            data = {**result, "owner_email": DEMO_EMAIL, "owner_password": DEMO_PASSWORD}
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data, indent=2))
            self.stdout.write(self.style.SUCCESS("Demo Shop created."))
        elif path.exists():
            data = json.loads(path.read_text())
        else:
            self.stdout.write("Demo Shop exists; its keys were shown when it was created (see the admin).")
            return
        site = settings.SITE_URL
        self.stdout.write(
            "\n".join(
                [
                    "─" * 72,
                    f"  Admin:        {site}/admin/   (login {data['owner_email']} / {data['owner_password']})",
                    f"  Live API key: {data['live_key']}",
                    f"  Test API key: {data['test_key']}",
                    f"  Try it:       curl -H 'Authorization: Bearer {data['live_key']}' {site}/api/v1/me",
                    f"  Portal:       {site}/p/demo-shop/friends/   (join as a customer, share your link)",
                    f"  Demo shop:    {site}/demo-shop/   (where the link lands; place an order there)",
                    f"  API docs:     {site}/api/docs/",
                    "─" * 72,
                ]
            )
        )
