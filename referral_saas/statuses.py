"""Status sets that more than one app counts by, kept in the core so that an app below rewards can name them."""

# A reward in good standing (rewards.models.Reward.Status): it is a cost of the program, and its order counts as
# rewarded (the rollups, the orders list's "rewarded" filter, the dashboards' links).
GOOD_REWARD_STATUSES = ("pending", "approved", "issued", "redeemed")
