"""Merchant admin: reward rules, rewards (release, void, reject), coupon pools and their CSV upload, the points
catalog, the ledger and the cash due (CSV, payouts).

Status changes go through the rewards services only; every page is scoped to the signed-in merchant by
`TenantModelAdmin`, and the custom pages (code upload, cash due, payout) look their rows up through the same scope,
so another merchant's id is a 404. Django's autodiscover imports this package: importing each module registers its
pages.
"""

from referral_saas.tenancy.admin_site import ops_admin
from rewards.admin import catalog, ledger, pools, rewards, rules
from rewards.models import (
    CatalogItem,
    Coupon,
    CouponPool,
    LedgerEntry,
    Reward,
    RewardAdjustment,
    RewardEvent,
    RewardRule,
)

__all__ = ["catalog", "ledger", "pools", "rewards", "rules"]

for model in (RewardRule, Reward, RewardEvent, RewardAdjustment, CouponPool, Coupon, CatalogItem, LedgerEntry):
    ops_admin.register(model, list_display=["__str__", "merchant"], list_filter=["merchant"])
