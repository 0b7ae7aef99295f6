"""Writes for rewards: deciding, releasing and issuing, refunds, points and the catalog, emails."""

from rewards.services.batch import conversions_process
from rewards.services.catalog import catalog_item_create, catalog_item_update, catalog_item_validate
from rewards.services.deciding import conversion_process, milestones_check, referral_process
from rewards.services.issuing import reward_issue, reward_release, reward_release_early, rewards_release_due
from rewards.services.notify import notification_send, notifications_send_many
from rewards.services.points import (
    cash_payout_record,
    points_redeem,
    pool_upload,
    reward_redeem,
)
from rewards.services.portal import portal_redeem, portal_redeem_token
from rewards.services.refunds import refund_apply
from rewards.services.rules import reward_rule_create, reward_rule_update, reward_rule_validate
from rewards.services.sweep import rewards_sweep
from rewards.services.transitions import reward_reject, reward_transition, reward_void

__all__ = [
    "cash_payout_record",
    "catalog_item_create",
    "catalog_item_update",
    "catalog_item_validate",
    "conversion_process",
    "conversions_process",
    "milestones_check",
    "notification_send",
    "notifications_send_many",
    "points_redeem",
    "pool_upload",
    "portal_redeem",
    "portal_redeem_token",
    "referral_process",
    "refund_apply",
    "reward_issue",
    "reward_redeem",
    "reward_reject",
    "reward_release",
    "reward_release_early",
    "reward_rule_create",
    "reward_rule_update",
    "reward_rule_validate",
    "reward_transition",
    "reward_void",
    "rewards_release_due",
    "rewards_sweep",
]
