"""manage.py clickdeadletters [--count N] [--json] [--clear]

Buffered clicks the ingest could not store (bad JSON, a malformed or unknown id, a value PostgreSQL refused) are kept
in a dead-letter stream with the reason, instead of blocking every other click. This lists the newest ones; --clear
drops them all once read.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from tracking.clicks import DEAD_STREAM, dead_letter_count, dead_letters, dead_letters_clear


class Command(BaseCommand):
    help = "List the clicks the ingest could not store (newest first), with the reason; --clear drops them."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=50, help="how many to list (default 50)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="one JSON object per line")
        parser.add_argument("--clear", action="store_true", help="drop every dead letter after listing")

    def handle(self, *args, count: int, as_json: bool, clear: bool, **options):
        letters = dead_letters(count=count) if count > 0 else []
        if as_json:
            for letter in letters:
                self.stdout.write(json.dumps(letter))  # escaped: an entry may hold terminal control sequences
        else:
            self.stdout.write(f"{dead_letter_count()} dead-lettered click(s) in {DEAD_STREAM}")
            for letter in letters:
                reason, data = (json.dumps(letter[key])[1:-1] for key in ("reason", "data"))  # escaped, as above
                self.stdout.write(f"{letter['dead_at']}  {reason}\n    {data}")
        if clear:
            self.stderr.write(f"cleared {dead_letters_clear()} dead letter(s)")
