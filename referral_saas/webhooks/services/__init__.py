"""Writes for webhooks. Other apps call `webhook_emit`; the admin and the API manage endpoints and resends."""

from referral_saas.webhooks.services.delivery import (
    MAX_ATTEMPTS,
    RETRY_SCHEDULE,
    deliveries_sweep,
    delivery_attempt,
    delivery_resend,
    messages_purge,
    messages_redact,
    retry_delay,
    webhook_emit,
)
from referral_saas.webhooks.services.endpoints import (
    MAX_ENDPOINTS_PER_MODE,
    endpoint_create,
    endpoint_delete,
    endpoint_disable,
    endpoint_disabled_notify,
    endpoint_enable,
    endpoint_events_check,
    endpoint_rotate_secret,
    endpoint_update,
    endpoint_url_check,
    new_secret,
)

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_ENDPOINTS_PER_MODE",
    "RETRY_SCHEDULE",
    "deliveries_sweep",
    "delivery_attempt",
    "delivery_resend",
    "endpoint_create",
    "endpoint_delete",
    "endpoint_disable",
    "endpoint_disabled_notify",
    "endpoint_enable",
    "endpoint_events_check",
    "endpoint_rotate_secret",
    "endpoint_update",
    "endpoint_url_check",
    "messages_purge",
    "messages_redact",
    "new_secret",
    "retry_delay",
    "webhook_emit",
]
