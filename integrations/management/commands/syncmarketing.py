"""manage.py syncmarketing --merchant SLUG [--connection ID] [--participant ID ...] [--json]

Backfill: send the profiles of the merchant's existing participants with marketing consent to its marketing tools
(all its active marketing connections, or one), with a progress bar. The rows are queued here and sent by the
integrations workers, in the tools' batches, like every other sync (see them in the admin's "marketing syncs")."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from integrations.models import MARKETING_PROVIDERS, Connection
from integrations.services import marketing_backfill, marketing_backfill_scope
from referral_saas.tenancy.models import Merchant

CHUNK = 500


class Command(BaseCommand):
    help = "Queue every consenting participant's profile for the merchant's marketing tools (a backfill)."

    def add_arguments(self, parser):
        parser.add_argument("--merchant", required=True, help="The merchant's slug.")
        parser.add_argument("--connection", type=int, help="Only this connection (its id).")
        parser.add_argument("--participant", type=int, action="append", help="Only these participants (repeat).")
        parser.add_argument("--json", action="store_true", help="Print one JSON object (for scripts).")

    def handle(self, *args, **opts):
        merchant = Merchant.objects.filter(slug=opts["merchant"]).first()
        if merchant is None:
            raise CommandError(f"No merchant with the slug {opts['merchant']!r}.")
        connections = Connection.objects.for_merchant(merchant).filter(
            provider__in=MARKETING_PROVIDERS, status=Connection.Status.ACTIVE
        )
        if opts["connection"]:
            connections = connections.filter(pk=opts["connection"])
        connections = list(connections)
        if not connections:
            raise CommandError("The merchant has no active marketing tool connection (see createconnection).")
        run = timezone.now().strftime("%Y%m%dT%H%M%S")
        interactive = not opts["json"] and sys.stdout.isatty()
        queued = {}
        for connection in connections:
            scope = marketing_backfill_scope(connection=connection)
            if opts["participant"]:
                scope = scope.filter(pk__in=opts["participant"])
            ids = list(scope.values_list("pk", flat=True))
            done = 0
            queued[connection.pk] = 0
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                queued[connection.pk] += marketing_backfill(connection=connection, participant_ids=chunk, run=run)
                done += len(chunk)
                if not opts["json"]:
                    self._progress(str(connection), done, len(ids), interactive)
            if not opts["json"] and not ids:
                self.stdout.write(f"{connection}: no participant with marketing consent.")
            elif interactive:
                self.stdout.write("")
        if opts["json"]:
            self.stdout.write(json.dumps({"run": run, "queued": {str(k): v for k, v in queued.items()}}))
            return
        self.stdout.write(self.style.SUCCESS(f"Queued {sum(queued.values())} profiles (run {run}); workers send them."))

    def _progress(self, label: str, done: int, total: int, interactive: bool) -> None:
        width = 30
        filled = round(width * done / total)
        line = f"{label}: [{'#' * filled}{'-' * (width - filled)}] {done}/{total} ({100 * done // total}%)"
        self.stdout.write(("\r" + line) if interactive else line, ending="" if interactive else "\n")
        self.stdout.flush()
