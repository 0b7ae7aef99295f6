"""Rewards' answers to what the apps below it tell it, connected in RewardsConfig.ready."""

from __future__ import annotations

from programs.services import program_rows_copy
from rewards import selectors
from rewards.models import CatalogItem, CouponPool, RewardRule


def program_duplicated(sender, *, program, copy, variants, **kwargs) -> None:
    # Pools are copied empty (a coupon code is single-use); rules and catalog items point at the copies.
    pools = program_rows_copy(model=CouponPool, program=program, copy=copy)
    program_rows_copy(model=RewardRule, program=program, copy=copy, variant=variants, pool=pools)
    program_rows_copy(model=CatalogItem, program=program, copy=copy, pool=pools)


def program_checked(sender, *, program, **kwargs) -> list[str]:
    return selectors.program_setup_warnings(program=program)
