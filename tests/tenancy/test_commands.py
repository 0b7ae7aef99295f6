"""createmerchant / createapikey / seed_demo: the scriptable ways to get a merchant and keys."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from programs.models import Program
from referral_saas.tenancy.models import ApiKey, Membership, Merchant, User
from tests.factories import join

pytestmark = pytest.mark.django_db


def _run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def _me(key: str) -> dict:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    response = client.get("/api/v1/me")
    assert response.status_code == 200
    return response.json()


def test_createmerchant_json_prints_exactly_the_contract_object_and_working_keys():
    out = _run(
        "createmerchant",
        "--name",
        "Sklep Ani",
        "--owner-email",
        "Ana@Sklep.PL",
        "--currency",
        "PLN",
        "--json",
    )
    data = json.loads(out)
    assert set(data) == {"merchant", "live_key", "test_key", "program"}
    assert data["merchant"] == "sklep-ani"
    assert data["program"] is None
    assert _me(data["live_key"])["mode"] == "live"
    assert _me(data["test_key"])["mode"] == "test"
    merchant = Merchant.objects.get(slug="sklep-ani")
    assert merchant.default_currency == "PLN"
    owner = Membership.objects.for_merchant(merchant).get()
    assert owner.role == Membership.Role.OWNER
    assert owner.user.email == "ana@sklep.pl"


def test_createmerchant_with_password_gives_a_working_verified_login(client):
    _run(
        "createmerchant",
        "--name",
        "Shop",
        "--owner-email",
        "o@shop.example",
        "--password",
        "a-long-passw0rd!",
    )
    response = client.post("/accounts/login/", {"login": "o@shop.example", "password": "a-long-passw0rd!"})
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_createmerchant_for_an_existing_user_adds_a_second_shop():
    _run("createmerchant", "--name", "One", "--owner-email", "same@x.example")
    _run("createmerchant", "--name", "Two", "--owner-email", "same@x.example")
    assert User.objects.filter(email="same@x.example").count() == 1
    assert Membership.all_merchants.filter(user__email="same@x.example").count() == 2


def test_createmerchant_rejects_an_unknown_currency_without_writing_anything():
    with pytest.raises(CommandError, match="currency"):
        _run("createmerchant", "--name", "Bad", "--owner-email", "b@x.example", "--currency", "ABC")
    assert not Merchant.objects.filter(name="Bad").exists()
    assert not User.objects.filter(email="b@x.example").exists()


def test_two_shops_with_the_same_name_get_distinct_slugs():
    first = json.loads(_run("createmerchant", "--name", "Twin", "--owner-email", "a@t.example", "--json"))
    second = json.loads(_run("createmerchant", "--name", "Twin", "--owner-email", "b@t.example", "--json"))
    assert first["merchant"] == "twin"
    assert second["merchant"] == "twin-2"


def test_createapikey_prints_a_key_for_the_named_merchant(tenant):
    key = _run("createapikey", "--merchant", tenant.merchant.slug, "--mode", "test").strip()
    assert key.startswith("rk_test_")
    assert _me(key)["merchant"]["slug"] == tenant.merchant.slug
    with pytest.raises(CommandError, match="No merchant"):
        _run("createapikey", "--merchant", "nope")


def test_seed_demo_creates_once_and_prints_the_same_credentials_again(tmp_path, settings):
    settings.BASE_DIR = tmp_path
    first = _run("seed_demo", "--no-history")  # the history: tests/analytics/test_demo_history.py
    second = _run("seed_demo")
    assert Merchant.objects.filter(slug="demo-shop").count() == 1
    assert ApiKey.objects.for_merchant(Merchant.objects.get(slug="demo-shop")).count() == 2
    key = next(w for w in first.split() if w.startswith("rk_live_"))
    assert key in second
    assert _me(key)["merchant"]["name"] == "Demo Shop"
    assert "owner@demo.shop" in second


def test_createmerchant_with_demo_program_gives_an_active_program_the_api_can_use():
    data = json.loads(
        _run(
            "createmerchant",
            "--name",
            "Demo",
            "--owner-email",
            "d@x.example",
            "--demo-program",
            "--currency",
            "PLN",
            "--json",
        )
    )
    assert data["program"] == "friends"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {data['live_key']}")
    program = client.get("/api/v1/programs/friends").json()
    assert (program["status"], program["live"], program["currency"]) == ("active", True, "PLN")
    joined = client.post("/api/v1/participants", {"program": "friends", "email": "a@x.example"}, format="json")
    assert joined.status_code == 201


def test_the_demo_storefront_reports_orders_like_a_shop_backend(client, settings):
    settings.DEMO_SHOP = True
    _run("createmerchant", "--name", "Demo Shop", "--owner-email", "d@x.example", "--demo-program")
    page = client.get("/demo-shop/")
    assert b"referral.js" in page.content
    program = Program.objects.for_merchant(Merchant.objects.get(slug="demo-shop")).get()
    _p, code = join(program, email="anna@x.example")
    placed = client.post(
        "/demo-shop/", {"order_id": "D1", "email": "buyer@x.example", "amount": "50.00", "referral_code": code.code}
    )
    assert b"attributed to" in placed.content
    bad = client.post("/demo-shop/", {"order_id": "D2", "email": "b@x.example", "amount": "-1"})
    assert b"Enter an order number and an amount" in bad.content


def test_the_demo_storefront_is_off_unless_enabled(client, settings):
    settings.DEMO_SHOP = False
    assert client.get("/demo-shop/").status_code == 404
