"""manage.py rotate_integration_keys: re-encrypt every stored shop credential with the first INTEGRATIONS_KEYS key.

Rotation: put the new key first in INTEGRATIONS_KEYS (keep the old one after it), deploy, run this, then remove
the old key."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from integrations.services.connections import connections_reencrypt


class Command(BaseCommand):
    help = "Re-encrypt every shop connection's credentials and webhook secrets with the current key."

    def handle(self, *args, **opts):
        count = connections_reencrypt()
        self.stdout.write(self.style.SUCCESS(f"{count} connection(s) re-encrypted with the current key."))
