"""Delivered events are forgotten after 30 days; pending ones are kept."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from referral_saas.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookMessage
from referral_saas.webhooks.services import messages_purge, webhook_emit

pytestmark = pytest.mark.django_db


def test_old_finished_messages_are_purged_and_pending_or_recent_ones_kept(tenant, other_tenant, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    for t in (tenant, other_tenant):
        assert (
            t.api.post("/api/v1/webhook-endpoints", {"url": "https://hooks.example/in"}, format="json").status_code
            == 201
        )
    messages = {}
    for name, t in (("old_done", tenant), ("old_pending", tenant), ("recent", tenant), ("other_old", other_tenant)):
        messages[name] = webhook_emit(merchant=t.merchant, livemode=True, event_type="reward.issued", data={"n": name})
    old = timezone.now() - datetime.timedelta(days=31)
    WebhookMessage.all_merchants.exclude(pk=messages["recent"].pk).update(created_at=old)
    WebhookDelivery.all_merchants.exclude(message=messages["old_pending"]).update(
        status=WebhookDelivery.Status.SUCCEEDED, next_attempt_at=None
    )
    delivery = WebhookDelivery.all_merchants.get(message=messages["old_done"])
    WebhookAttempt.objects.for_merchant(tenant.merchant).create(delivery=delivery, number=1, status_code=200)
    assert messages_purge() == 2
    left = set(WebhookMessage.all_merchants.values_list("payload__n", flat=True))
    assert left == {"old_pending", "recent"}
    assert not WebhookAttempt.all_merchants.exists()
