"""webhook_emit: what is stored for whom, in the caller's transaction; participant.created from the shop API."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db import transaction

from referral_saas.webhooks import services
from referral_saas.webhooks.models import EVENT_TYPES, WebhookDelivery, WebhookMessage
from tests.webhooks.conftest import emit, make_endpoint

pytestmark = pytest.mark.django_db


def _deliveries(merchant):
    return WebhookDelivery.objects.for_merchant(merchant)


def test_the_event_catalogue():
    assert EVENT_TYPES == (
        "participant.created",
        "referral.created",
        "conversion.attributed",
        "fraud.flagged",
        "reward.approved",
        "reward.issued",
        "reward.voided",
        "reward.clawed_back",
    )


def test_without_endpoints_an_event_costs_one_query_and_stores_nothing(tenant, django_assert_num_queries):
    emit(tenant.merchant, "reward.issued")  # the first asks (once) whether the merchant has marketing tools: cached
    with django_assert_num_queries(1):
        assert emit(tenant.merchant, "reward.issued") is None
    assert not WebhookMessage.objects.for_merchant(tenant.merchant).exists()


def test_an_unknown_event_type_is_a_programming_error(tenant):
    with pytest.raises(ValueError, match=r"reward\.exploded"):
        emit(tenant.merchant, "reward.exploded")


def test_only_enabled_endpoints_of_the_mode_that_subscribe_get_a_delivery(tenant, other_tenant):
    url = "https://hooks.shop.example/{}"
    wants_it, _s = make_endpoint(tenant.merchant, url.format("a"), events=["reward.issued"])
    wants_all, _s = make_endpoint(tenant.merchant, url.format("b"))
    make_endpoint(tenant.merchant, url.format("c"), events=["participant.created"])
    make_endpoint(tenant.merchant, url.format("d"), enabled=False)
    make_endpoint(tenant.merchant, url.format("e"), livemode=False)
    make_endpoint(other_tenant.merchant, url.format("f"))

    message = emit(tenant.merchant, "reward.issued", {"id": 1, "amount": Decimal("12.50")})

    assert re.fullmatch(r"msg_[A-Za-z0-9]{24}", message.msg_id)
    assert (message.type, message.livemode) == ("reward.issued", True)
    assert {d.endpoint_id for d in _deliveries(tenant.merchant)} == {wants_it.pk, wants_all.pk}
    assert all(d.status == "pending" and d.next_attempt_at for d in _deliveries(tenant.merchant))
    assert not _deliveries(other_tenant.merchant).exists()
    stored = WebhookMessage.objects.for_merchant(tenant.merchant).get(pk=message.pk)
    assert stored.payload == {"id": 1, "amount": "12.50"}  # amounts are strings, as in the API


def test_test_mode_events_go_to_test_mode_endpoints_only(tenant):
    live, _s = make_endpoint(tenant.merchant, "https://hooks.shop.example/live")
    test, _s = make_endpoint(tenant.merchant, "https://hooks.shop.example/test", livemode=False)
    emit(tenant.merchant, "reward.issued", livemode=False)
    assert [d.endpoint_id for d in _deliveries(tenant.merchant)] == [test.pk]
    assert live.pk != test.pk


def test_each_event_is_a_new_message_with_its_own_id(tenant):
    make_endpoint(tenant.merchant, "https://hooks.shop.example/x")
    first, second = emit(tenant.merchant), emit(tenant.merchant)
    assert first.msg_id != second.msg_id


def test_delivery_is_enqueued_only_after_the_callers_commit(tenant, django_capture_on_commit_callbacks):
    make_endpoint(tenant.merchant, "https://hooks.shop.example/1")
    make_endpoint(tenant.merchant, "https://hooks.shop.example/2")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = emit(tenant.merchant)
    assert len(callbacks) == 2  # one task per delivery, once the transaction commits
    assert {c.keywords["delivery_id"] for c in callbacks} == set(
        _deliveries(tenant.merchant).filter(message=message).values_list("pk", flat=True)
    )


def test_a_rolled_back_write_leaves_no_event(tenant):
    make_endpoint(tenant.merchant, "https://hooks.shop.example/x")

    class Rollback(Exception):
        pass

    def write_then_fail():
        with transaction.atomic():
            emit(tenant.merchant)
            raise Rollback

    with pytest.raises(Rollback):
        write_then_fail()
    assert not WebhookMessage.objects.for_merchant(tenant.merchant).exists()
    assert not _deliveries(tenant.merchant).exists()


def test_a_new_participant_emits_participant_created_with_the_api_representation(tenant, program):
    make_endpoint(tenant.merchant, "https://hooks.shop.example/participants", events=["participant.created"])
    body = {"program": "friends", "external_id": "c-42", "email": "ana@sklep.pl", "name": "Ana", "language": "pl"}

    created = tenant.api.post("/api/v1/participants", body, format="json")
    again = tenant.api.post("/api/v1/participants", body, format="json")

    assert (created.status_code, again.status_code) == (201, 200)
    [message] = WebhookMessage.objects.for_merchant(tenant.merchant)  # joining again is not a new participant
    assert message.type == "participant.created"
    assert message.livemode is True
    assert message.payload == created.json()
    assert message.payload["code"]
    assert message.payload["link"].endswith(message.payload["code"])


def test_a_test_mode_participant_emits_to_test_mode_endpoints(tenant, program):
    from tests.factories import make_api_key

    make_endpoint(tenant.merchant, "https://hooks.shop.example/live")
    make_endpoint(tenant.merchant, "https://hooks.shop.example/test", livemode=False)
    _key, raw = make_api_key(tenant.merchant, mode="test")
    tenant.api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = tenant.api.post("/api/v1/participants", {"program": "friends", "email": "t@x.pl"}, format="json")
    assert response.status_code == 201
    [message] = WebhookMessage.objects.for_merchant(tenant.merchant)
    assert message.livemode is False
    assert [d.endpoint.url for d in _deliveries(tenant.merchant)] == ["https://hooks.shop.example/test"]


def test_emit_refuses_data_that_is_not_an_object(tenant):
    make_endpoint(tenant.merchant, "https://hooks.shop.example/x")
    with pytest.raises(TypeError):
        services.webhook_emit(merchant=tenant.merchant, livemode=True, event_type="reward.issued", data=[1, 2])
