"""Writes of the integrations app: connections (connections.py), inbound events (inbound.py) and what an event does
to orders, refunds and people (processing.py)."""

from integrations.services.connections import (  # noqa: F401 - the public services
    connection_check,
    connection_connect,
    connection_create,
    connection_disconnect,
    connection_record_error,
)
from integrations.services.ga4 import ga4_click_record  # noqa: F401
from integrations.services.inbound import (  # noqa: F401
    PROCESS_TASK,
    inbound_event_process,
    inbound_event_replay,
    inbound_event_store,
    inbound_events_sweep,
)
from integrations.services.marketing import (  # noqa: F401
    SYNC_TASK,
    ga4_validate,
    marketing_backfill,
    marketing_backfill_scope,
    marketing_events_hear,
    marketing_sync_send,
    outbound_sync_replay,
    outbound_syncs_sweep,
)
from integrations.services.test_order import test_order_send  # noqa: F401
