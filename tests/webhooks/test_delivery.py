"""Delivering one event to a real local HTTP server: signature, retries, backoff, Retry-After, 410, redirects,
timeouts, the SSRF guard, the attempt log, resends and the 3-day cut-off."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from referral_saas.errors import Unprocessable
from referral_saas.webhooks import sending, services
from referral_saas.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from referral_saas.webhooks.services import delivery as delivery_module
from tests.webhooks.conftest import Reply, attempt, delivery_of, emit, fresh, make_due, make_endpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def hook(tenant, receiver, allow_private):
    """An endpoint of Alpha Shop on the local receiver, one event and its delivery."""
    endpoint, secret = make_endpoint(tenant.merchant, receiver.url())
    message = emit(tenant.merchant, "reward.issued", {"id": 7, "amount": "10.00", "participant": {"id": 42}})
    return {"endpoint": endpoint, "secret": secret, "message": message, "delivery": delivery_of(message, endpoint)}


def _attempts(delivery) -> list[WebhookAttempt]:
    return list(WebhookAttempt.objects.for_merchant(delivery.merchant_id).filter(delivery=delivery).order_by("pk"))


def test_a_delivery_is_signed_per_standard_webhooks_and_verifies_with_the_library(hook, receiver):
    assert attempt(hook["delivery"]) == "succeeded"

    [request] = receiver.received
    assert request.method == "POST"
    assert request.path == "/hooks/referrals"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == hook["message"].msg_id
    assert request.headers["webhook-id"].startswith("msg_")
    assert request.headers["webhook-signature"].startswith("v1,")
    payload = Webhook(hook["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "reward.issued"
    assert payload["data"] == {"id": 7, "amount": "10.00", "participant": {"id": 42}}
    assert payload["timestamp"].endswith("Z")
    assert list(payload) == ["type", "timestamp", "data"]
    with pytest.raises(WebhookVerificationError):  # the signature covers the body
        Webhook(hook["secret"]).verify(request.body.replace(b"10.00", b"99.00"), request.headers)
    with pytest.raises(WebhookVerificationError):  # and only this endpoint's secret makes it
        Webhook(services.new_secret()).verify(request.body, request.headers)

    delivery = fresh(hook["delivery"])
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)
    assert delivery.next_attempt_at is None


def test_a_delivered_event_is_not_sent_again(hook, receiver):
    assert attempt(hook["delivery"]) == "succeeded"
    assert attempt(hook["delivery"]) is None  # a stale or duplicate task finds nothing to do
    assert len(receiver.received) == 1


def test_the_webhook_id_and_body_are_the_same_on_every_retry(hook, receiver):
    receiver.reply(Reply(500), Reply(502))
    assert attempt(hook["delivery"]) == "pending"
    make_due(hook["delivery"])
    assert attempt(hook["delivery"]) == "pending"
    make_due(hook["delivery"])
    assert attempt(hook["delivery"]) == "succeeded"

    ids = {request.headers["webhook-id"] for request in receiver.received}
    assert ids == {hook["message"].msg_id}
    assert len({request.body for request in receiver.received}) == 1
    for request in receiver.received:  # every attempt is freshly signed and verifies
        Webhook(hook["secret"]).verify(request.body, request.headers)
    assert [a.number for a in _attempts(hook["delivery"])] == [1, 2, 3]


def test_retries_follow_the_backoff_schedule_for_about_three_days_then_stop(hook, receiver):
    receiver.reply(*[Reply(500)] * 20)
    expected = [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
    assert [int(d.total_seconds()) for d in services.RETRY_SCHEDULE] == expected
    assert 2.9 * 86400 < sum(expected) < 3.5 * 86400

    for seconds in expected:
        assert attempt(hook["delivery"]) == "pending"
        delivery = fresh(hook["delivery"])
        waited = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
        assert seconds * 0.89 <= waited <= seconds * 1.11, (seconds, waited)
        make_due(delivery)

    assert attempt(hook["delivery"]) == "failed"  # the 10th attempt was the last
    delivery = fresh(hook["delivery"])
    assert (delivery.attempts, delivery.next_attempt_at, delivery.last_status_code) == (10, None, 500)
    assert len(receiver.received) == 10
    assert attempt(delivery) is None  # a failed delivery is only sent again by a resend


def test_backoff_has_jitter_within_ten_percent():
    delays = {services.retry_delay(failed_attempts=2).total_seconds() for _ in range(50)}
    assert len(delays) > 1
    assert all(270 <= d <= 330 for d in delays)
    assert services.retry_delay(failed_attempts=99) <= timedelta(hours=24 * 1.1)


def test_the_first_retry_rides_on_a_countdown_and_later_ones_wait_for_the_sweeper(
    hook, receiver, django_capture_on_commit_callbacks
):
    receiver.reply(Reply(500), Reply(500))
    with django_capture_on_commit_callbacks() as callbacks:
        attempt(hook["delivery"])
    assert len(callbacks) == 1  # the 5 s retry is enqueued with a countdown
    assert callbacks[0].keywords["countdown"] == pytest.approx(5, rel=0.15)
    make_due(hook["delivery"])
    with django_capture_on_commit_callbacks() as callbacks:
        attempt(hook["delivery"])
    assert callbacks == []  # 5 minutes: kept in PostgreSQL for the sweeper, not in the broker
    assert fresh(hook["delivery"]).enqueued_at is None


@pytest.mark.parametrize(
    ("retry_after", "low", "high"),
    [
        ("3600", 3600, 3601),  # later than the 5 s step: honoured
        ("99999999", 86400, 86401),  # absurd: bounded to 24 hours
        ("1", 4.5, 5.5),  # sooner than the schedule: the schedule wins
    ],
)
def test_retry_after_is_honoured_within_bounds(hook, receiver, retry_after, low, high):
    receiver.reply(Reply(429, {"Retry-After": retry_after}))
    assert attempt(hook["delivery"]) == "pending"
    delivery = fresh(hook["delivery"])
    waited = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
    assert low <= waited <= high + 1


def test_retry_after_as_an_http_date():
    now = timezone.now()
    header = (now + timedelta(hours=2)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert sending.parse_retry_after(header, now=now) == pytest.approx(7200, abs=1)
    assert sending.parse_retry_after("soon") is None
    assert sending.parse_retry_after(None) is None


def test_410_gone_disables_the_endpoint_and_stops_its_deliveries(hook, receiver, tenant):
    other = delivery_of(emit(tenant.merchant, "reward.approved"), hook["endpoint"])
    receiver.reply(Reply(410, body=b"this endpoint is gone"))

    assert attempt(hook["delivery"]) == "failed"
    endpoint = WebhookEndpoint.objects.for_merchant(tenant.merchant).get(pk=hook["endpoint"].pk)
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "gone")
    assert fresh(other).status == "failed"  # waiting deliveries stop too
    assert emit(tenant.merchant) is None  # and nothing new is stored for it
    assert attempt(other) is None
    assert len(receiver.received) == 1


def test_redirects_are_not_followed_and_count_as_failures(hook, receiver):
    receiver.reply(Reply(301, {"Location": receiver.url("/elsewhere")}))
    assert attempt(hook["delivery"]) == "pending"
    assert [request.path for request in receiver.received] == ["/hooks/referrals"]  # never /elsewhere
    [logged] = _attempts(hook["delivery"])
    assert (logged.status_code, logged.succeeded) == (301, False)
    assert "not followed" in logged.error
    assert "/elsewhere" in logged.error


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_any_2xx_is_a_success(hook, receiver, status):
    receiver.reply(Reply(status, body=b""))
    assert attempt(hook["delivery"]) == "succeeded"


@pytest.mark.parametrize("status", [400, 401, 404, 500, 503])
def test_anything_but_2xx_is_retried(hook, receiver, status):
    receiver.reply(Reply(status))
    assert attempt(hook["delivery"]) == "pending"
    assert fresh(hook["delivery"]).last_status_code == status


def test_requests_time_out_after_ten_seconds(hook, receiver, monkeypatch):
    assert sending.TIMEOUT_SECONDS == 10
    monkeypatch.setattr(sending, "TIMEOUT_SECONDS", 0.5)  # the same rule, without waiting 10 s in the test
    receiver.reply(Reply(200, delay=3))
    assert attempt(hook["delivery"]) == "pending"
    [logged] = _attempts(hook["delivery"])
    assert logged.status_code is None
    assert "No answer within 0.5 seconds" in logged.error
    assert fresh(hook["delivery"]).last_error == logged.error


def test_the_timeout_is_for_the_whole_request_not_each_read(hook, receiver, monkeypatch):
    monkeypatch.setattr(sending, "TIMEOUT_SECONDS", 0.5)
    receiver.reply(Reply(200, drip=0.2))  # a header every 0.2 s: no single read waits 0.5 s, the answer takes 3 s
    assert attempt(hook["delivery"]) == "pending"
    [logged] = _attempts(hook["delivery"])
    assert logged.status_code is None  # not the 200 that would have come in the end
    assert "No answer within 0.5 seconds" in logged.error


def test_an_attempt_cut_off_by_the_task_time_limit_is_a_logged_failure(hook, monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    def cut_off(*args, **kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(sending, "post", cut_off)
    assert attempt(hook["delivery"]) == "pending"  # retried later, like any failure
    [logged] = _attempts(hook["delivery"])
    assert "cut off" in logged.error
    assert fresh(hook["delivery"]).endpoint.failing_since is not None  # counts towards disabling the endpoint


def test_attempts_whose_worker_died_still_count_and_the_delivery_gives_up(hook):
    from referral_saas.webhooks.services.delivery import MAX_ATTEMPTS

    WebhookDelivery.objects.for_merchant(hook["delivery"].merchant_id).filter(pk=hook["delivery"].pk).update(
        run_attempts=MAX_ATTEMPTS
    )  # every attempt claimed, none recorded (killed mid-request)
    assert attempt(hook["delivery"]) is None
    delivery = fresh(hook["delivery"])
    assert (delivery.status, delivery.next_attempt_at) == ("failed", None)
    assert f"Gave up after {MAX_ATTEMPTS} attempts" in delivery.last_error


def test_every_attempt_is_logged_with_status_latency_and_the_first_kilobyte(hook, receiver):
    receiver.reply(Reply(500, body=b"x" * 5000), Reply(503, body="Przerwa techniczna — zaraz wracamy".encode()))
    attempt(hook["delivery"])
    make_due(hook["delivery"])
    attempt(hook["delivery"])
    make_due(hook["delivery"])
    attempt(hook["delivery"])

    first, second, third = _attempts(hook["delivery"])
    assert (first.number, first.status_code, first.succeeded) == (1, 500, False)
    assert first.response_excerpt == "x" * 1024
    assert second.status_code == 503
    assert "zaraz wracamy" in second.response_excerpt
    assert (third.status_code, third.succeeded, third.error) == (200, True, "")
    for logged in (first, second, third):
        assert logged.latency_ms is not None
        assert logged.latency_ms < 5000
        assert logged.url == hook["endpoint"].url
        assert logged.created_at is not None


def test_a_private_address_is_refused_at_delivery_when_not_allowed(hook, receiver, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False  # e.g. the endpoint was created while it was allowed
    assert attempt(hook["delivery"]) == "pending"
    assert receiver.received == []
    [logged] = _attempts(hook["delivery"])
    assert "127.0.0.1 is a loopback address" in logged.error
    assert logged.status_code is None


def test_the_connection_itself_is_checked_so_dns_rebinding_cannot_reach_a_private_address(
    hook, receiver, settings, monkeypatch
):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    monkeypatch.setattr(sending, "url_refusal", lambda url: None)  # as if DNS said "public" when first asked
    assert attempt(hook["delivery"]) == "pending"
    assert receiver.received == []
    [logged] = _attempts(hook["delivery"])
    assert "loopback address" in logged.error


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("172.16.5.4", "private"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - the address under test, not a bind
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("fec0::1", "site-local"),
        ("192.0.0.8", "special-purpose"),
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
    ],
)
def test_address_kinds(address, kind):
    assert sending.address_kind(address) == kind


def test_a_success_after_failures_resets_the_failure_clock(hook, receiver):
    receiver.reply(Reply(500))
    attempt(hook["delivery"])
    assert fresh(hook["delivery"]).endpoint.failing_since is not None
    make_due(hook["delivery"])
    attempt(hook["delivery"])
    assert fresh(hook["delivery"]).endpoint.failing_since is None


def test_an_endpoint_failing_for_three_days_is_disabled_and_its_owners_are_emailed(
    hook, receiver, tenant, django_capture_on_commit_callbacks
):
    WebhookEndpoint.objects.for_merchant(tenant.merchant).filter(pk=hook["endpoint"].pk).update(
        failing_since=timezone.now() - timedelta(days=3, minutes=1)
    )
    receiver.reply(Reply(500, body=b"database down"))
    with django_capture_on_commit_callbacks(execute=True):
        assert attempt(hook["delivery"]) == "failed"

    endpoint = WebhookEndpoint.objects.for_merchant(tenant.merchant).get(pk=hook["endpoint"].pk)
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "failing")
    [email] = mail.outbox
    assert email.to == [tenant.owner.email]
    assert hook["endpoint"].url in email.subject
    assert "HTTP 500" in email.body
    assert f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/" in email.body


def test_failures_for_less_than_three_days_keep_the_endpoint(hook, receiver, tenant):
    WebhookEndpoint.objects.for_merchant(tenant.merchant).filter(pk=hook["endpoint"].pk).update(
        failing_since=timezone.now() - timedelta(days=2, hours=23)
    )
    receiver.reply(Reply(500))
    assert attempt(hook["delivery"]) == "pending"
    assert WebhookEndpoint.objects.for_merchant(tenant.merchant).get(pk=hook["endpoint"].pk).enabled
    assert mail.outbox == []


def test_resend_sends_the_same_webhook_id_again_with_a_fresh_schedule(hook, receiver):
    assert attempt(hook["delivery"]) == "succeeded"
    services.delivery_resend(delivery=hook["delivery"])
    delivery = fresh(hook["delivery"])
    assert (delivery.status, delivery.run_attempts) == ("pending", 0)
    assert attempt(delivery) == "succeeded"

    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == hook["message"].msg_id
    Webhook(hook["secret"]).verify(second.body, second.headers)
    assert fresh(delivery).attempts == 2
    assert len(_attempts(delivery)) == 2


def test_a_failed_delivery_can_be_resent_and_gets_all_its_retries_again(hook, receiver):
    WebhookDelivery.objects.for_merchant(hook["delivery"].merchant_id).filter(pk=hook["delivery"].pk).update(
        status="failed", next_attempt_at=None, attempts=10, run_attempts=10
    )
    services.delivery_resend(delivery=hook["delivery"])
    receiver.reply(Reply(500))
    assert attempt(hook["delivery"]) == "pending"  # attempt 1 of a new run, not the 11th of 10
    assert fresh(hook["delivery"]).attempts == 11


def test_resend_is_refused_while_the_endpoint_is_disabled(hook, receiver):
    services.endpoint_disable(endpoint=hook["endpoint"])
    with pytest.raises(Unprocessable, match="enable it first"):
        services.delivery_resend(delivery=hook["delivery"])
    assert attempt(hook["delivery"]) is None
    assert receiver.received == []


def test_a_disabled_endpoint_gets_no_request(hook, receiver):
    WebhookEndpoint.objects.for_merchant(hook["endpoint"].merchant_id).filter(pk=hook["endpoint"].pk).update(
        enabled=False, disabled_reason="manual"
    )
    assert attempt(hook["delivery"]) is None
    assert receiver.received == []
    assert fresh(hook["delivery"]).status == "failed"


def test_after_a_secret_rotation_both_secrets_verify_for_a_day(hook, receiver):
    endpoint, new_secret = services.endpoint_rotate_secret(endpoint=hook["endpoint"])
    assert new_secret != hook["secret"]
    assert new_secret.startswith("whsec_")
    attempt(hook["delivery"])
    [request] = receiver.received
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(new_secret).verify(request.body, request.headers)
    Webhook(hook["secret"]).verify(request.body, request.headers)

    WebhookEndpoint.objects.for_merchant(endpoint.merchant_id).filter(pk=endpoint.pk).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    services.delivery_resend(delivery=hook["delivery"])
    attempt(hook["delivery"])
    later = receiver.received[1]
    Webhook(new_secret).verify(later.body, later.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(hook["secret"]).verify(later.body, later.headers)


def test_the_body_is_the_documented_json(hook):
    body = sending.body_for(event_type="reward.issued", created_at=hook["message"].created_at, data={"ą": 1})
    document = json.loads(body)
    assert document == {
        "type": "reward.issued",
        "timestamp": hook["message"].created_at.isoformat().replace("+00:00", "Z"),
        "data": {"ą": 1},
    }


def test_an_endpoint_deleted_while_an_attempt_is_in_flight_is_no_error(hook, receiver, monkeypatch):
    real_post = sending.post

    def post_then_delete(url, **kwargs):
        outcome = real_post(url, **kwargs)
        services.endpoint_delete(endpoint=hook["endpoint"])
        return outcome

    monkeypatch.setattr(delivery_module.sending, "post", post_then_delete)
    assert attempt(hook["delivery"]) is None
    assert len(receiver.received) == 1
    assert not WebhookDelivery.objects.for_merchant(hook["endpoint"].merchant_id).exists()


def test_the_sweeper_enqueues_what_is_due_and_not_enqueued_lately(tenant, django_capture_on_commit_callbacks):
    endpoint, _secret = make_endpoint(tenant.merchant, "https://hooks.shop.example/a")
    now = timezone.now()

    def delivery(next_attempt_at, enqueued_at, status="pending"):
        row = delivery_of(emit(tenant.merchant), endpoint)
        WebhookDelivery.objects.for_merchant(tenant.merchant).filter(pk=row.pk).update(
            next_attempt_at=next_attempt_at, enqueued_at=enqueued_at, status=status
        )
        return row.pk

    retry_due = delivery(now - timedelta(seconds=1), None)
    message_lost = delivery(now - timedelta(minutes=9), now - timedelta(minutes=10))
    delivery(now - timedelta(seconds=1), now - timedelta(seconds=30))  # enqueued just now: its task is coming
    delivery(now + timedelta(hours=2), None)  # not due yet
    delivery(None, None, status="succeeded")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        swept = services.deliveries_sweep()

    assert sorted(swept) == sorted([retry_due, message_lost])
    assert sorted(c.keywords["delivery_id"] for c in callbacks) == sorted(swept)
    with django_capture_on_commit_callbacks(execute=False):
        assert services.deliveries_sweep() == []  # marked as enqueued: not again on the next beat
