"""Writes for programs and participants."""

from programs.services.participants import (
    participant_erase,
    participant_find_or_create,
    participant_set_status,
    participant_update,
    program_create,
    program_duplicate,
    program_rows_copy,
    program_set_status,
    program_update,
    public_names_changed,
)

__all__ = [
    "participant_erase",
    "participant_find_or_create",
    "participant_set_status",
    "participant_update",
    "program_create",
    "program_duplicate",
    "program_rows_copy",
    "program_set_status",
    "program_update",
    "public_names_changed",
]
