"""Fraud's answers to what the apps below it tell it, connected in FraudConfig.ready."""

from __future__ import annotations

from fraud.models import FraudSettings
from fraud.services import sighting_record
from programs.services import program_rows_copy


def program_duplicated(sender, *, program, copy, **kwargs) -> None:
    program_rows_copy(model=FraudSettings, program=program, copy=copy)


def participant_joined(sender, *, participant, merchant, ip, user_agent, device_id, **kwargs) -> None:
    sighting_record(merchant=merchant, participant=participant, ip=ip, user_agent=user_agent, device_id=device_id)
