"""manage.py seed_large [--scale 1|10] [--rollup]: the analytics benchmark data set (see analytics.services.seed).

Run it on an empty, throwaway database (make seed-large uses the benchmark database): it creates the merchant
bench-analytics with 100,000 participants, 1,000,000 clicks and 100,000 orders over 12 months (x --scale).
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Generate the large analytics data set (set-based SQL), optionally rolled up."

    def add_arguments(self, parser):
        parser.add_argument("--scale", type=float, default=1.0, help="1 = 100k participants / 1M clicks; 10 = x10.")
        parser.add_argument("--rollup", action="store_true", help="Roll everything up afterwards (a backfill).")
        parser.add_argument("--slug", default="bench-analytics", help="The merchant's slug.")

    def handle(self, *args, scale: float, rollup: bool, slug: str, **options):
        from analytics.services.seed import seed_large

        if scale <= 0:
            raise CommandError("--scale must be positive.")
        started = time.monotonic()

        def progress(message: str) -> None:
            self.stdout.write(f"[{time.monotonic() - started:7.1f}s] {message}")
            self.stdout.flush()

        try:
            world = seed_large(scale=scale, progress=progress, slug=slug)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if rollup:
            import datetime

            from django.core.management import call_command
            from django.utils import timezone

            since = (timezone.now() - datetime.timedelta(days=400)).date()
            call_command("rollup_stats", "--since", since.isoformat(), "--merchant", slug, stdout=self.stdout)
        self.stdout.write(
            f"Seeded merchant {slug}: {world.participants:,} participants, {world.orders:,} orders "
            f"in {time.monotonic() - started:.0f}s."
        )
