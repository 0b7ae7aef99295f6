"""`{% load money %}{{ value|amount:currency }}`: an amount in the active language with its currency's decimals."""

from __future__ import annotations

from django import template

from referral_saas.money import format_amount

register = template.Library()


@register.filter
def amount(value, currency: str) -> str:
    """1500 JPY -> "1,500"; 12.5 PLN -> "12.50" (en) / "12,50" (pl). Empty for no value."""
    if value is None or value == "":
        return ""
    return format_amount(value, currency)
