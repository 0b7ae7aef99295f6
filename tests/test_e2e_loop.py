"""The whole referral loop over HTTP, with the click going through the real Redis stream and a real worker."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.test import Client

from tests.factories import ProgramFactory
from tests.processes import celery_worker
from tracking.models import Click, Conversion, Referral
from tracking.tasks import ingest_clicks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_join_link_click_signup_order_is_one_attributed_conversion(tenant, click_stream):
    program = ProgramFactory(merchant=tenant.merchant, slug="friends", currency="PLN")

    # 1. Anna joins in the portal and signs in from the emailed link.
    anna = Client()
    anna.post(
        f"/en/p/{tenant.merchant.slug}/friends/join/",
        {"email": "anna@example.pl", "name": "Anna", "accept_terms": "on"},
    )
    sign_in = re.search(r"https?://[^/\s]+(/\S+/sign-in/\S+/)", mail.outbox[-1].body).group(1)
    anna.post(sign_in)
    dashboard = anna.get(f"/en/p/{tenant.merchant.slug}/friends/").content.decode()
    link = re.search(r'value="(https?://[^"]+/r/([^"]+))"', dashboard)
    code = link.group(2)

    # 2. Her friend Bob clicks it: a 302 to the landing page, the click buffered in Redis.
    bob = Client()
    redirect = bob.get(f"/r/{code}", HTTP_USER_AGENT="Mozilla/5.0 (Linux; Android 14) Chrome/131.0 Mobile")
    assert redirect.status_code == 302
    query = parse_qs(urlsplit(redirect["Location"]).query)
    assert query["ref"] == [code]
    click_id = query["rs_click"][0]

    # 3. A real worker ingests the click from the stream into PostgreSQL.
    with celery_worker(queues=["clicks"]):
        ingest_clicks.delay()
        assert _wait_for(lambda: Click.objects.for_merchant(tenant.merchant).filter(click_id=click_id).exists())

    # 4. Bob signs up at the shop with the click id the snippet kept; 5. then orders, naming only himself.
    signup = tenant.api.post(
        "/api/v1/referrals",
        {"click_id": click_id, "customer": {"external_id": "bob-1", "email": "bob@example.pl"}},
        format="json",
    )
    assert signup.status_code == 201
    order = tenant.api.post(
        "/api/v1/conversions",
        {"order_id": "B-100", "amount": "200.00", "currency": "PLN", "customer": {"external_id": "bob-1"}},
        format="json",
        HTTP_IDEMPOTENCY_KEY="order-B-100",
    )
    assert order.status_code == 201
    body = order.json()
    assert body["attributed"] is True
    assert body["referral"]["code"] == code

    conversion = Conversion.objects.for_merchant(tenant.merchant).get(order_id="B-100")
    assert conversion.click.click_id.hex == click_id
    referral = Referral.objects.for_merchant(tenant.merchant).get()
    assert referral.status == Referral.Status.CONVERTED
    assert referral.referrer.email == "anna@example.pl"
    assert program.pk == conversion.program_id

    # Anna sees it in her portal.
    page = anna.get(f"/en/p/{tenant.merchant.slug}/friends/").content.decode()
    assert re.search(r'data-testid="stat-clicks">1<', page)
