"""Rewards: rules per program and side, the reward lifecycle, coupon pools, the points ledger and catalog.

Filled in by the rewards-and-fraud issue; the referral loop already stores the conversions and refunds it acts on.
"""
