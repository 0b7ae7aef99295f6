"""Compile locale/*/LC_MESSAGES/*.po into .mo with Babel (no GNU gettext binaries needed)."""

from __future__ import annotations

import os
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Compile .po translation catalogs to .mo when they changed."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Recompile even when the .mo is newer.")

    def handle(self, *args, **opts):
        compiled = 0
        for locale_dir in map(Path, settings.LOCALE_PATHS):
            for po_path in sorted(locale_dir.glob("*/LC_MESSAGES/*.po")):
                mo_path = po_path.with_suffix(".mo")
                if not opts["force"] and mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
                    continue
                with po_path.open("rb") as po_file:
                    catalog = read_po(po_file, locale=po_path.parent.parent.name)
                # Written aside, then renamed: a server or a test process reading the catalog meanwhile sees the
                # old one or the new one, never half of one.
                partial = mo_path.with_name(f".{mo_path.name}.{os.getpid()}.tmp")
                with partial.open("wb") as mo_file:
                    write_mo(mo_file, catalog, use_fuzzy=False)
                os.replace(partial, mo_path)
                compiled += 1
                if opts["verbosity"] > 1:
                    self.stdout.write(f"compiled {po_path}")
        self.stdout.write(f"translations: {compiled} catalog(s) compiled")
