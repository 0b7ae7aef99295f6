"""Reads for webhooks: a merchant's endpoints (per mode)."""

from __future__ import annotations

from django.db.models import QuerySet

from referral_saas.errors import NotFound
from referral_saas.tenancy.models import Merchant
from referral_saas.webhooks.models import WebhookEndpoint

_MAX_ID = 2**63 - 1


def endpoint_list(*, merchant: Merchant, livemode: bool) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.for_merchant(merchant).filter(livemode=livemode)


def endpoint_get(*, merchant: Merchant, livemode: bool, endpoint_id: int) -> WebhookEndpoint:
    """One endpoint of this merchant and mode; another merchant's or mode's id is NotFound, like an unknown one."""
    endpoint = None
    if 0 < endpoint_id <= _MAX_ID:
        endpoint = endpoint_list(merchant=merchant, livemode=livemode).filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("No webhook endpoint with this id.")
    return endpoint
