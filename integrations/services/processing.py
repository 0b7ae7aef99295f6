"""What an inbound event does: its provider says what it means (providers/*.interpret), and here each meaning is
applied through the services the shop API uses (one code path for orders and refunds, whichever door they came
through): an order is tracking.services.conversion_record, exactly as POST /api/v1/conversions calls it, a refund
is tracking.services.refund_record, as POST /api/v1/conversions/<order_id>/refunds calls it."""

from __future__ import annotations

from dataclasses import dataclass, field

from integrations.models import Connection, InboundEvent
from integrations.providers.base import Action, CustomerRequest, Disconnect, Ignore, Order, Refund
from integrations.selectors import order_remaining, participants_matching, referral_code_for_discounts
from integrations.services.connections import connection_disconnect
from programs.services import participant_erase
from referral_saas.errors import Unprocessable
from referral_saas.money import MAX_AMOUNT, quantize
from tracking import services as tracking_services
from tracking.selectors import participant_export

# conversion_record refuses a click id or a code it does not know (a 422 to the shop API). From a platform that is
# a stale cookie or a discount code that is no referral: the order is recorded all the same, without it.
UNKNOWN_TOUCH = {"unknown_click", "unknown_code"}
REDACTED = b'{"redacted": true}'


class Waiting(Exception):
    """A refund arrived before its order: the event waits (and is tried again when the order arrives, found by the
    order's ref, which may be better known now than when the event was stored)."""

    def __init__(self, message: str, *, order_ref: str):
        super().__init__(message)
        self.order_ref = order_ref


@dataclass
class Outcome:
    notes: list[str] = field(default_factory=list)
    ignored: bool = True

    @property
    def summary(self) -> str:
        return "; ".join(self.notes)


def apply_actions(*, connection: Connection, event: InboundEvent, actions: list[Action]) -> Outcome:
    outcome = Outcome()
    for action in actions:
        if isinstance(action, Ignore):
            outcome.notes.append(action.reason)
            continue
        if isinstance(action, Order | Refund) and not connection.is_active:
            outcome.notes.append("the connection is disconnected")
            continue
        outcome.ignored = False
        if isinstance(action, Order):
            outcome.notes.append(_order(connection, action))
        elif isinstance(action, Refund):
            outcome.notes.append(_refund(connection, action))
        elif isinstance(action, CustomerRequest):
            outcome.notes.append(_customer_request(connection, event, action))
        elif isinstance(action, Disconnect):
            _disconnect(connection, action)
            outcome.notes.append(f"disconnected ({action.reason})")
    return outcome


def _order(connection: Connection, order: Order) -> str:
    if not connection.syncs("orders"):
        return "orders are not synced"
    merchant, livemode = connection.merchant, connection.livemode
    amount = quantize(order.amount, order.currency)
    if amount < 0 or amount > MAX_AMOUNT:
        raise Unprocessable(f"The order's amount {order.amount} is out of range.", code="amount_out_of_range")
    code = order.code or referral_code_for_discounts(
        merchant=merchant, livemode=livemode, discount_codes=order.discount_codes
    )
    tries = [(order.click_id, code), (None, code), (None, None)]
    for click_id, given_code in dict.fromkeys(tries):  # each distinct combination once, best first
        try:
            conversion, created = tracking_services.conversion_record(
                merchant=merchant,
                livemode=livemode,
                order_id=order.order_id,
                amount=amount,
                currency=order.currency,
                customer_external_id=order.customer_external_id,
                customer_email=order.customer_email,
                code=given_code,
                click_id=click_id,
                occurred_at=order.occurred_at,
                ip=order.ip,
                user_agent=order.user_agent,
                ga_client_id=order.ga_client_id,
            )
        except Unprocessable as exc:
            if exc.code not in UNKNOWN_TOUCH or (click_id, given_code) == (None, None):
                raise
            continue
        verb = "recorded" if created else "already recorded"
        return f"order {order.order_id} {verb} ({conversion.status})"
    raise AssertionError("unreachable")  # pragma: no cover


def _refund(connection: Connection, refund: Refund) -> str:
    if not connection.syncs("refunds"):
        return "refunds are not synced"
    merchant, livemode = connection.merchant, connection.livemode
    remaining = order_remaining(merchant=merchant, livemode=livemode, order_id=refund.order_id)
    if remaining is None:
        raise Waiting(f"Order {refund.order_id} has not arrived yet.", order_ref=refund.order_id)
    # A platform's refund may include shipping and taxes, which the order's amount (after discounts, before
    # shipping and taxes) does not: it takes back at most what remains. None is "all that remains" (cancelled).
    amount = remaining if refund.amount is None else min(refund.amount, remaining)
    if amount <= 0:
        return f"nothing left to refund on {refund.order_id}"
    stored, created = tracking_services.refund_record(
        merchant=merchant,
        livemode=livemode,
        order_id=refund.order_id,
        amount=amount,
        refund_id=refund.refund_id,
        reason=refund.reason,
    )
    return f"refund {refund.refund_id} of {stored.amount} {'recorded' if created else 'already recorded'}"


def _customer_request(connection: Connection, event: InboundEvent, request: CustomerRequest) -> str:
    people = list(
        participants_matching(
            merchant=connection.merchant,
            livemode=connection.livemode,
            external_id=request.external_id,
            email=request.email,
        )
    )
    if request.kind == "export":
        exported = [participant_export(participant=p) for p in people]
        event.result = {"request_id": request.request_id, "participants": exported}
        event.save(update_fields=["result"])
        return f"data of {len(people)} participant(s) exported (see the event's result)"
    for participant in people:
        participant_erase(participant=participant)
    # The raw bodies we kept of their orders name them too: emptied (the events stay, as a record that they came).
    redacted = (
        InboundEvent.objects.for_merchant(connection.merchant)
        .filter(connection=connection, order_ref__in=request.order_refs)
        .exclude(pk=event.pk)
        .update(body=REDACTED, headers={})
    )
    return f"{len(people)} participant(s) erased, {redacted} stored event(s) of their orders redacted"


def _disconnect(connection: Connection, action: Disconnect) -> None:
    # The shop removed our app: its webhooks went with it, nothing remote to delete.
    connection_disconnect(connection=connection, reason=action.reason, remote=False)
    connection.status = Connection.Status.DISCONNECTED
