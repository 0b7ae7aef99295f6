"""KPI reads for the dashboard. Until a merchant has programs and events, every card is empty."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Card:
    key: str
    label: str
    value: str | None
    hint: str


def dashboard_cards(*, merchant) -> list[Card]:
    """The KPI cards on the admin home page, with a hint on how each gets a value."""
    empty = _("No data yet: create a program and share its link.")
    return [
        Card("referred_customers", _("New customers from referrals"), None, empty),
        Card("referral_revenue", _("Referral revenue"), None, empty),
        Card("conversion_rate", _("Conversion rate (clicks → orders)"), None, empty),
        Card("rewards_cost", _("Rewards cost"), None, empty),
        Card("roi", _("ROI"), None, empty),
        Card("participation", _("Participation rate"), None, empty),
    ]
