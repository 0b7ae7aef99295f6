"""Writes for programs and participants (the referrer portal's own writes are in portal.services)."""

from programs.services.participants import (
    participant_erase,
    participant_join,
    participant_set_status,
    participant_update,
    participant_upsert,
    program_duplicate,
    program_get_by_slug,
    program_set_status,
    program_update,
    public_names_changed,
    variant_for,
)

__all__ = [
    "participant_erase",
    "participant_join",
    "participant_set_status",
    "participant_update",
    "participant_upsert",
    "program_duplicate",
    "program_get_by_slug",
    "program_set_status",
    "program_update",
    "public_names_changed",
    "variant_for",
]
