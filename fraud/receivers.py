"""Fraud's answers to what the apps below it tell it, connected in FraudConfig.ready."""

from __future__ import annotations

from fraud.models import FraudSettings
from programs.services import program_rows_copy


def program_duplicated(sender, *, program, copy, **kwargs) -> None:
    program_rows_copy(model=FraudSettings, program=program, copy=copy)
