"""Tracking's answers to what programs tell it (programs.signals), connected in TrackingConfig.ready."""

from __future__ import annotations

from django.db import transaction

from tracking.selectors import participant_codes_cache_invalidate, program_cache_invalidate
from tracking.services import participant_erase_tracking


def program_changed(sender, *, program, **kwargs) -> None:
    # Now, and again once the change is visible (a reader in between would cache the old program otherwise).
    program_cache_invalidate(program_id=program.pk)
    transaction.on_commit(lambda: program_cache_invalidate(program_id=program.pk))


def participant_status_changed(sender, *, participant, **kwargs) -> None:
    # Now, and again once the change is visible (a reader in between would cache the old status otherwise).
    participant_codes_cache_invalidate(participant=participant)
    transaction.on_commit(lambda: participant_codes_cache_invalidate(participant=participant))


def participant_erased(sender, *, participant, **kwargs) -> None:
    participant_erase_tracking(participant=participant)
