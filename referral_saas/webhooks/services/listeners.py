"""Who else hears of our domain events besides the shop's webhook endpoints: the one call site is webhook_emit /
webhook_emit_many (every event a shop can subscribe to), plus participant_erase for an erasure (no webhook event).

A listener is registered at start-up by an app above (integrations syncs marketing tools from its AppConfig.ready),
as the apps emitting events cannot import it. It is called inside the emitting transaction with
(merchant, [(livemode, event_type, data), ...]): it writes what it needs there (rolled back with the caller) and
enqueues its work on commit. `data` may be a function (built once, only by a listener that wants it).
"""

from __future__ import annotations

import time
from collections.abc import Callable

EventData = dict | Callable[[], dict]
Listener = Callable[[object, list[tuple[bool, str, EventData]]], None]
_listeners: list[Listener] = []

# Not webhook event types: told to listeners only. An erasure with {"id", "email", "external_id"} read before it;
# a consent given after joining with {"id", "key"} (the key tells one giving from a later one).
PARTICIPANT_ERASED = "participant.erased"
CONSENT_GIVEN = "participant.consent_given"


def domain_event_listener_register(listener: Listener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def once(data: EventData) -> EventData:
    """`data`, built at most once however many listeners (and the webhook endpoints) ask for it."""
    if not callable(data):
        return data
    built: list[dict] = []

    def build() -> dict:
        if not built:
            built.append(data())
        return built[0]

    return build


def domain_events_tell(*, merchant, events: list[tuple[bool, str, EventData]]) -> None:
    if not events:
        return
    for listener in _listeners:
        listener(merchant, events)


def consent_given_tell(*, participant) -> None:
    """A participant gave marketing consent after joining: the tools that sync consenting people get them now."""
    data = {"id": participant.pk, "key": f"{participant.pk}@{time.time_ns()}"}
    domain_events_tell(merchant=participant.merchant, events=[(participant.livemode, CONSENT_GIVEN, data)])
