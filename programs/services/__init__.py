"""Writes for programs, participants and the referrer portal."""

from programs.services.participants import (
    participant_erase,
    participant_find_or_create,
    participant_set_status,
    participant_update,
    program_duplicate,
    program_rows_copy,
    program_set_status,
    program_update,
    public_names_changed,
)
from programs.services.portal import (
    LINK_MAX_AGE,
    invites_send,
    portal_link_make,
    portal_link_send,
    portal_link_verify,
    portal_sso_url,
    portal_sso_verify,
    share_record,
)

__all__ = [
    "LINK_MAX_AGE",
    "invites_send",
    "participant_erase",
    "participant_find_or_create",
    "participant_set_status",
    "participant_update",
    "portal_link_make",
    "portal_link_send",
    "portal_link_verify",
    "portal_sso_url",
    "portal_sso_verify",
    "program_duplicate",
    "program_rows_copy",
    "program_set_status",
    "program_update",
    "public_names_changed",
    "share_record",
]
