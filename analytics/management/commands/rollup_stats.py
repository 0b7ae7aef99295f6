"""manage.py rollup_stats [--since YYYY-MM-DD] [--merchant SLUG ...]

Without --since: one incremental run (what beat does every minute). With --since: recount every day from that date
to today (in each merchant's time zone), with a progress bar; use it after a merchant changes time zone, or to
rebuild the rollups from the raw tables.
"""

from __future__ import annotations

import argparse
import datetime
import sys

from django.core.management.base import BaseCommand, CommandError

from analytics.services import rollup_backfill, rollup_incremental
from referral_saas.tenancy.models import Merchant


def _date(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--since must be a date like 2026-01-31, not {value!r}") from None


def _chunk_days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        days = 0
    if days < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of days, at least 1, not {value!r}")
    return days


class Command(BaseCommand):
    help = "Roll up analytics: an incremental run, or a backfill from --since (with a progress bar)."

    def add_arguments(self, parser):
        parser.add_argument("--since", type=_date, help="Recount every day from this date (YYYY-MM-DD) to today.")
        parser.add_argument("--merchant", action="append", default=[], help="Only this merchant (slug); repeatable.")
        parser.add_argument(
            "--chunk-days", type=_chunk_days, default=31, help="Days per transaction in a backfill (at least 1)."
        )

    def handle(self, *args, since=None, merchant=(), chunk_days=31, **options):
        if since is None:
            if merchant:
                raise CommandError("--merchant needs --since (an incremental run covers every merchant).")
            result = rollup_incremental()
            if not result.ran:
                self.stdout.write("Another rollup is running; nothing done.")
                return
            self.stdout.write(
                f"Recounted {result.keys} program days and {result.shop_keys} shop days in {result.seconds:.2f}s."
            )
            return
        merchants = None
        if merchant:
            merchants = list(Merchant.objects.filter(slug__in=merchant))
            missing = set(merchant) - {m.slug for m in merchants}
            if missing:
                raise CommandError(f"Unknown merchant: {', '.join(sorted(missing))}")
        interactive = self.stdout.isatty() if hasattr(self.stdout, "isatty") else sys.stdout.isatty()

        def progress(done: int, total: int) -> None:
            width = 30
            filled = round(width * done / total)
            bar = "#" * filled + "-" * (width - filled)
            line = f"[{bar}] {done}/{total} chunks ({100 * done // total}%)"
            self.stdout.write(("\r" + line) if interactive else line, ending="" if interactive else "\n")
            self.stdout.flush()

        result = rollup_backfill(since=since, merchants=merchants, chunk_days=chunk_days, progress=progress)
        if interactive:
            self.stdout.write("")
        self.stdout.write(
            f"Recounted {result.keys} program days, {result.shop_keys} shop days and {result.customers} customers "
            f"since {since} in {result.seconds:.1f}s."
        )
