"""Attribution through the API: click id, else code, else an earlier sign-up; window, model, new customers, self."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from programs.models import Program
from tests.factories import ProgramFactory, fullwidth, join
from tracking.clicks import clicks_ingest
from tracking.models import Conversion, Referral, ReferralCode

pytestmark = pytest.mark.django_db


def _order(api, order_id="1001", amount="129.90", currency="PLN", customer=None, **extra):
    body = {
        "order_id": order_id,
        "amount": amount,
        "currency": currency,
        "customer": customer or {"external_id": "c-77", "email": "Bob.Friend@gmail.com"},
        **extra,
    }
    return api.post("/api/v1/conversions", body, format="json")


def _click(client, code) -> str:
    response = client.get(f"/r/{code.code}", HTTP_USER_AGENT="Mozilla/5.0 (iPhone) Safari/604.1")
    return parse_qs(urlsplit(response["Location"]).query)["rs_click"][0]


def test_an_order_with_the_code_is_attributed_to_its_referrer(tenant, referrer):
    participant, code = referrer
    response = _order(tenant.api, code=code.code.lower())
    assert response.status_code == 201
    body = response.json()
    assert body["attributed"] is True
    assert body["status"] == "attributed"
    assert body["referral"]["referrer"] == {"id": participant.pk, "external_id": "c-42"}
    assert body["referral"]["code"] == code.code
    assert body["amount"] == "129.90"
    referral = Referral.objects.for_merchant(tenant.merchant).get()
    assert referral.status == Referral.Status.CONVERTED
    assert referral.referee_email_normalized == "bobfriend@gmail.com"


def test_an_order_with_a_click_id_is_attributed_before_and_after_the_click_is_ingested(
    client, tenant, referrer, click_stream
):
    _participant, code = referrer
    pending = _click(client, code)
    first = _order(tenant.api, order_id="A", click_id=pending, customer={"email": "first@x.example"})
    assert first.json()["attributed"] is True
    ingested = _click(client, code)
    clicks_ingest()
    second = _order(tenant.api, order_id="B", click_id=ingested, customer={"email": "second@x.example"})
    assert second.json()["attributed"] is True
    assert Conversion.objects.for_merchant(tenant.merchant).get(order_id="B").click.click_id.hex == ingested


def test_the_click_wins_over_a_typed_code(client, tenant, referrer, program, click_stream):
    _participant, code = referrer
    _other, other_code = join(program, email="other@people.example", name="Olga")
    click_id = _click(client, code)
    body = _order(tenant.api, click_id=click_id, code=other_code.code).json()
    assert body["referral"]["code"] == code.code


def test_an_order_without_code_is_attributed_by_the_customers_earlier_sign_up(tenant, referrer):
    _participant, code = referrer
    signup = tenant.api.post(
        "/api/v1/referrals", {"code": code.code, "customer": {"email": "b.o.b+shop@googlemail.com"}}, format="json"
    )
    assert signup.status_code == 201
    assert signup.json()["status"] == "signed_up"
    body = _order(tenant.api, customer={"email": "bob@gmail.com"}).json()  # same inbox, Gmail normalisation
    assert body["attributed"] is True
    assert body["referral"]["id"] == signup.json()["id"]


def test_unattributed_orders_are_stored_as_the_baseline(tenant, referrer):
    response = _order(tenant.api, customer={"external_id": "walk-in"})
    assert response.status_code == 201
    assert response.json()["attributed"] is False
    assert response.json()["referral"] is None
    assert Conversion.objects.for_merchant(tenant.merchant).get().status == Conversion.Status.UNATTRIBUTED


def test_outside_the_window_nothing_is_attributed(tenant, referrer):
    _participant, code = referrer
    tenant.api.post("/api/v1/referrals", {"code": code.code, "customer": {"external_id": "c-77"}}, format="json")
    Referral.objects.for_merchant(tenant.merchant).update(touched_at=timezone.now() - timedelta(days=31))
    body = _order(tenant.api).json()
    assert body["attributed"] is False
    assert body["rejection_reason"] == "outside_window"


def test_first_touch_keeps_the_first_referrer(tenant, referrer, program):
    _anna, anna_code = referrer
    _olga, olga_code = join(program, email="olga@people.example", name="Olga")
    tenant.api.post("/api/v1/referrals", {"code": anna_code.code, "customer": {"external_id": "c-77"}}, format="json")
    again = tenant.api.post(
        "/api/v1/referrals", {"code": olga_code.code, "customer": {"external_id": "c-77"}}, format="json"
    )
    assert again.status_code == 200
    assert again.json()["code"] == anna_code.code
    assert _order(tenant.api, code=olga_code.code).json()["referral"]["code"] == anna_code.code


def test_last_touch_lets_the_newer_code_take_over_before_the_first_purchase(tenant, referrer, program):
    Program.objects.for_merchant(tenant.merchant).filter(pk=program.pk).update(attribution_model="last_touch")
    _anna, anna_code = referrer
    _olga, olga_code = join(program, email="olga@people.example", name="Olga")
    tenant.api.post("/api/v1/referrals", {"code": anna_code.code, "customer": {"external_id": "c-77"}}, format="json")
    assert _order(tenant.api, code=olga_code.code).json()["referral"]["code"] == olga_code.code
    assert Referral.objects.for_merchant(tenant.merchant).count() == 1


@pytest.mark.parametrize(
    "customer",
    [
        {"external_id": "c-42"},
        {"email": "annakowalska@gmail.com"},
        {"email": "Anna.Kowalska+promo@googlemail.com"},
        {"email": f"anna.kowalska@{fullwidth('gmail')}.com"},  # fullwidth look-alikes of the same inbox
        {"email": '"anna.kowalska"@gmail.com'},  # quotes that change nothing
    ],
)
def test_self_referral_is_never_attributed_and_says_why(tenant, referrer, customer):
    _participant, code = referrer
    body = _order(tenant.api, code=code.code, customer=customer).json()
    assert body["attributed"] is False
    assert body["status"] == "rejected"
    assert body["rejection_reason"] == "self_referral"
    referral = Referral.objects.for_merchant(tenant.merchant).get()
    assert (referral.status, referral.rejection_reason) == ("rejected", "self_referral")


def test_a_returning_customer_is_not_new_when_the_program_wants_new_customers(tenant, referrer):
    _participant, code = referrer
    _order(tenant.api, order_id="old", customer={"external_id": "c-77"})  # bought before, without a referral
    body = _order(tenant.api, order_id="new", code=code.code, customer={"external_id": "c-77"}).json()
    assert body["attributed"] is False
    assert body["rejection_reason"] == "existing_customer"
    assert body["is_new_customer"] is False


def test_returning_customers_count_when_the_program_allows_them(tenant, referrer, program):
    Program.objects.for_merchant(tenant.merchant).filter(pk=program.pk).update(new_customers_only=False)
    _participant, code = referrer
    _order(tenant.api, order_id="old", customer={"external_id": "c-77"})
    assert _order(tenant.api, order_id="new", code=code.code, customer={"external_id": "c-77"}).json()["attributed"]


def test_a_blocked_referrer_earns_nothing(tenant, referrer):
    from programs.services import participant_set_status

    participant, code = referrer
    participant_set_status(participant=participant, status="blocked")
    body = _order(tenant.api, code=code.code).json()
    assert (body["attributed"], body["rejection_reason"]) == (False, "blocked_referrer")


def test_a_paused_program_attributes_nothing(tenant, referrer, program):
    Program.objects.for_merchant(tenant.merchant).filter(pk=program.pk).update(status="paused")
    _participant, code = referrer
    body = _order(tenant.api, code=code.code).json()
    assert (body["attributed"], body["rejection_reason"]) == (False, "program_inactive")


def test_a_program_paused_or_a_code_disabled_elsewhere_applies_to_the_very_next_order(tenant, referrer, program):
    # Changes made by another process (or a bulk update) reach no cache of this one: orders read the code each time.
    _participant, code = referrer
    assert _order(tenant.api, order_id="before", code=code.code).json()["attributed"] is True
    Program.objects.for_merchant(tenant.merchant).filter(pk=program.pk).update(status="paused")
    paused = _order(tenant.api, order_id="paused", code=code.code, customer={"email": "second@x.example"}).json()
    assert (paused["attributed"], paused["rejection_reason"]) == (False, "program_inactive")
    Program.objects.for_merchant(tenant.merchant).filter(pk=program.pk).update(status="active")
    ReferralCode.objects.for_merchant(tenant.merchant).filter(pk=code.pk).update(status="disabled")
    disabled = _order(tenant.api, order_id="disabled", code=code.code, customer={"email": "third@x.example"}).json()
    assert (disabled["attributed"], disabled["rejection_reason"]) == (False, "blocked_referrer")


def test_orders_naming_many_referrers_codes_each_go_to_their_own_referrer(tenant, program):
    referrers = [join(program, email=f"referrer{n}@people.example", name=f"R{n}") for n in range(12)]
    for n, (participant, code) in enumerate(referrers * 2):
        customer = {"external_id": f"buyer-{n}", "email": f"buyer{n}@shoppers.example"}
        body = _order(tenant.api, order_id=f"o-{n}", amount=f"{10 + n}.50", code=code.code, customer=customer).json()
        assert body["attributed"] is True
        assert (body["referral"]["referrer"]["id"], body["referral"]["code"]) == (participant.pk, code.code)
    assert Referral.objects.for_merchant(tenant.merchant).values("referrer").distinct().count() == 12


def test_an_order_in_another_currency_without_a_rate_is_stored_but_not_attributed(tenant, referrer):
    _participant, code = referrer
    response = _order(tenant.api, code=code.code, currency="EUR")
    assert response.status_code == 201
    body = response.json()
    assert (body["attributed"], body["attribution_reason"], body["amount"], body["currency"]) == (
        False, "currency_mismatch", "129.90", "EUR",
    )  # fmt: skip
    assert Conversion.objects.for_merchant(tenant.merchant).get().rejection_reason == "currency_mismatch"


def test_an_unknown_code_or_click_is_refused_and_nothing_is_written(tenant, referrer):
    assert _order(tenant.api, code="NOPE-ZZZZ").json()["error"]["code"] == "unknown_code"
    assert _order(tenant.api, click_id="f" * 32).json()["error"]["code"] == "unknown_click"
    assert _order(tenant.api, click_id="not-a-uuid").status_code == 422
    assert Conversion.objects.for_merchant(tenant.merchant).count() == 0


def test_another_merchants_code_is_unknown_here(tenant, other_tenant):
    foreign_program = ProgramFactory(merchant=other_tenant.merchant)
    _p, foreign_code = join(foreign_program, email="x@other.example")
    response = _order(tenant.api, code=foreign_code.code)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_code"


def test_the_same_order_twice_is_one_conversion(tenant, referrer):
    _participant, code = referrer
    first = _order(tenant.api, code=code.code)
    second = _order(tenant.api, code=code.code, amount="999.00")
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == first.json()
    assert Conversion.objects.for_merchant(tenant.merchant).count() == 1


def test_test_mode_keys_see_test_mode_data_only(tenant, referrer):
    from rest_framework.test import APIClient

    from tests.factories import make_api_key

    _participant, code = referrer
    _key, raw = make_api_key(tenant.merchant, mode="test")
    test_api = APIClient()
    test_api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert _order(test_api, code=code.code).json()["error"]["code"] == "unknown_code"  # a live code
    assert _order(test_api, order_id="T1").status_code == 201
    assert _order(tenant.api, order_id="T1").status_code == 201  # live and test order ids do not collide
    assert test_api.get("/api/v1/conversions").json()["results"][0]["order_id"] == "T1"
    assert len(tenant.api.get("/api/v1/conversions").json()["results"]) == 1


def test_a_friend_rejected_once_stays_rejected_and_later_orders_are_stored(tenant, referrer):
    _participant, code = referrer
    _order(tenant.api, order_id="before", customer={"external_id": "c-77"})  # ordered before: not a new customer
    first = _order(tenant.api, order_id="o1", code=code.code, customer={"external_id": "c-77"})
    assert first.json()["rejection_reason"] == "existing_customer"
    second = _order(tenant.api, order_id="o2", code=code.code, customer={"external_id": "c-77"})
    assert second.status_code == 201
    assert (second.json()["status"], second.json()["rejection_reason"]) == ("rejected", "existing_customer")
    assert Referral.objects.for_merchant(tenant.merchant).count() == 1


def test_a_sign_up_never_reopens_a_rejected_referral(tenant, referrer, program):
    _anna, anna_code = referrer
    _olga, olga_code = join(program, email="olga@people.example", name="Olga")
    tenant.api.post("/api/v1/referrals", {"code": anna_code.code, "customer": {"external_id": "c-77"}}, format="json")
    Referral.objects.for_merchant(tenant.merchant).update(status="rejected", rejection_reason="fraud")
    again = tenant.api.post(
        "/api/v1/referrals", {"code": olga_code.code, "customer": {"external_id": "c-77"}}, format="json"
    )
    assert again.status_code == 200
    assert (again.json()["status"], again.json()["rejection_reason"]) == ("rejected", "fraud")
    order = _order(tenant.api, code=olga_code.code).json()
    assert (order["attributed"], order["rejection_reason"]) == (False, "fraud")


def test_last_touch_never_hands_a_friend_to_a_touch_that_would_be_refused(tenant, referrer, program):
    Program.objects.for_merchant(tenant.merchant).filter(pk=program.pk).update(attribution_model="last_touch")
    _anna, anna_code = referrer
    _friend, friend_code = join(program, external_id="c-77", email="bob.friend@gmail.com", name="Bob")
    tenant.api.post("/api/v1/referrals", {"code": anna_code.code, "customer": {"external_id": "c-77"}}, format="json")
    own = tenant.api.post(
        "/api/v1/referrals", {"code": friend_code.code, "customer": {"external_id": "c-77"}}, format="json"
    )
    assert own.json()["code"] == anna_code.code  # Bob's own code does not take him over
    body = _order(tenant.api, code=friend_code.code).json()
    assert body["attributed"] is True
    assert body["referral"]["code"] == anna_code.code
