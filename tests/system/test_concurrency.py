"""Concurrency through the real server: the same order, reward or refund sent many times at the same instant."""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal

import pytest
import requests

from tests.system.stack import Browser, concurrently, wait_for

pytestmark = pytest.mark.slow


def _post(stack, key: str, path: str, body: dict, idempotency_key: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return requests.post(f"{stack.base_url}{path}", json=body, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def shop(stack):
    """One shop per server configuration for this module; each test has its own referrer and order ids."""
    return stack.createmerchant()


@pytest.fixture
def anna(stack, shop, request) -> dict:
    ref = f"anna-{abs(hash(request.node.nodeid))}"
    response = stack.api(shop.live_key).post(
        "/api/v1/participants", json={"program": shop.program, "external_id": ref, "email": f"{ref}@example.pl"}
    )
    assert response.status_code == 201, response.text
    return response.json()


def _order_id(anna: dict, name: str) -> str:
    return f"{name}-{anna['id']}"


@pytest.mark.parametrize("keys", ["same key", "different keys", "no key"])
def test_fifty_simultaneous_posts_of_one_order_make_one_conversion(stack, shop, anna, keys):
    order_id = _order_id(anna, "R")
    order = {
        "order_id": order_id,
        "amount": "129.90",
        "currency": "PLN",
        "code": anna["code"],
        "customer": {"external_id": f"bob-{order_id}", "email": f"bob-{order_id}@example.pl"},
    }
    key_for = {
        "same key": lambda i: f"order-{order_id}",
        "different keys": lambda i: f"order-{order_id}-{i}",
        "no key": lambda i: None,
    }

    responses = concurrently(50, lambda i: _post(stack, shop.live_key, "/api/v1/conversions", order, key_for[keys](i)))

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 201, 409}, statuses  # 409: the same key still in flight
    assert statuses[201] >= 1
    ids = {r.json()["id"] for r in responses if r.status_code in (200, 201)}
    assert len(ids) == 1  # every answer names the one order
    listed = stack.api(shop.live_key).get("/api/v1/conversions", params={"limit": 200}).json()["results"]
    assert [c["order_id"] for c in listed if c["order_id"] == order_id] == [order_id]
    assert stack.api(shop.live_key).get(f"/api/v1/conversions/{order_id}").json()["attributed"] is True


def test_fifty_friends_posting_one_order_id_at_once_leave_one_order_and_one_referral(stack, shop, anna):
    """Each request would open its own friend's referral with the order (one INSERT for both); the requests that
    lose the order id keep no referral either, and each answers with the one order."""
    order_id = _order_id(anna, "F")

    def post(i: int) -> requests.Response:
        order = {
            "order_id": order_id, "amount": "59.00", "currency": "PLN", "code": anna["code"],
            "customer": {"external_id": f"friend-{i}-{order_id}", "email": f"friend{i}-{order_id}@example.pl"},
        }  # fmt: skip
        return _post(stack, shop.live_key, "/api/v1/conversions", order, f"{order_id}-{i}")

    responses = concurrently(50, post)

    assert Counter(r.status_code for r in responses) == {201: 1, 200: 49}
    assert len({r.json()["id"] for r in responses}) == 1
    referrals = stack.api(shop.live_key).get("/api/v1/referrals", params={"referrer": anna["id"]}).json()["results"]
    winner = next(r.json() for r in responses if r.status_code == 201)
    assert [r["id"] for r in referrals] == [winner["referral"]["id"]]


def _issued_reward(stack, shop, anna) -> dict:
    """Anna's friend orders 100.00 (order `O-<anna's id>`); returns Anna's reward once it is issued."""
    api = stack.api(shop.live_key)
    order_id = _order_id(anna, "O")
    order = api.post(
        "/api/v1/conversions",
        json={"order_id": order_id, "amount": "100.00", "currency": "PLN", "code": anna["code"],
              "customer": {"external_id": f"bob-{order_id}", "email": f"bob-{order_id}@example.pl"}},
    )  # fmt: skip
    assert order.status_code == 201, order.text

    def issued():
        rewards = api.get("/api/v1/rewards", params={"participant": anna["id"], "status": "issued"}).json()["results"]
        return rewards[0] if rewards else None

    return wait_for(issued, timeout=90, what="the referrer's reward to be issued")


def test_thirty_simultaneous_redeems_of_one_reward_succeed_once(stack, shop, anna):
    reward = _issued_reward(stack, shop, anna)

    responses = concurrently(30, lambda i: _post(stack, shop.live_key, f"/api/v1/rewards/{reward['id']}/redeem", {}))

    statuses = Counter(r.status_code for r in responses)
    assert statuses[200] == 1, statuses
    assert set(statuses) <= {200, 409, 422}, statuses
    for refused in (r for r in responses if r.status_code != 200):
        assert refused.json()["error"]["code"]
    assert stack.api(shop.live_key).get(f"/api/v1/rewards/{reward['id']}").json()["status"] == "redeemed"


def test_thirty_simultaneous_refunds_never_refund_past_the_order(stack, shop, anna):
    _issued_reward(stack, shop, anna)  # an order of 100.00, with its reward
    order_id = _order_id(anna, "O")

    responses = concurrently(
        30,
        lambda i: _post(
            stack, shop.live_key, f"/api/v1/conversions/{order_id}/refunds", {"amount": "7.00", "refund_id": f"rf-{i}"}
        ),
    )

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 422}, statuses
    assert statuses[201] == 14  # 14 x 7.00 = 98.00; a 15th would pass 100.00
    order = stack.api(shop.live_key).get(f"/api/v1/conversions/{order_id}").json()
    assert Decimal(order["refunded_amount"]) == Decimal("98.00")
    refused = [r.json()["error"] for r in responses if r.status_code == 422]
    assert all(error["code"] for error in refused)


def test_thirty_simultaneous_sign_ups_of_one_friend_open_one_referral(stack, shop, anna):
    friend = {"external_id": f"friend-{anna['id']}", "email": f"friend-{anna['id']}@example.pl"}

    responses = concurrently(
        30, lambda i: _post(stack, shop.live_key, "/api/v1/referrals", {"code": anna["code"], "customer": friend})
    )

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 200: 29}, statuses  # created once; the others are told it exists
    assert len({r.json()["id"] for r in responses}) == 1
    referrals = stack.api(shop.live_key).get("/api/v1/referrals", params={"referrer": anna["id"]}).json()["results"]
    assert len(referrals) == 1


def test_twenty_simultaneous_deletes_of_one_webhook_endpoint_delete_it_once(stack, shop):
    api = stack.api(shop.live_key)
    endpoint = api.post("/api/v1/webhook-endpoints", json={"url": "https://shop.example/hooks/delete-race"}).json()

    responses = concurrently(
        20,
        lambda i: requests.delete(
            f"{stack.base_url}/api/v1/webhook-endpoints/{endpoint['id']}",
            headers={"Authorization": f"Bearer {shop.live_key}"},
            timeout=60,
        ),
    )

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 404: 19}, statuses
    assert api.get(f"/api/v1/webhook-endpoints/{endpoint['id']}").status_code == 404


def test_ten_simultaneous_duplicates_of_one_program_from_the_admin_make_ten_drafts(stack, shop):
    """The list action, clicked by ten staff at once: each copy takes the next free slug (a 500 on the slug
    constraint before). Ten browsers, each signed in, post the action at the same instant."""
    browsers = [Browser(stack.base_url) for _ in range(10)]
    for browser in browsers:
        browser.sign_in(shop.owner_email, shop.password)
    page = browsers[0].get("/admin/programs/program/", params={"q": shop.program}).text
    program_id = re.search(r'name="_selected_action" value="(\d+)"', page).group(1)
    tokens = [browser.form("/admin/programs/program/").fields["csrfmiddlewaretoken"] for browser in browsers]

    def duplicate(i: int) -> requests.Response:
        action = {"csrfmiddlewaretoken": tokens[i], "action": "duplicate", "index": "0", "_selected_action": program_id}
        return browsers[i].post("/admin/programs/program/", data=action, allow_redirects=False)

    responses = concurrently(10, duplicate)

    assert [r.status_code for r in responses] == [302] * 10
    listed = browsers[0].get("/admin/programs/program/", params={"q": f"{shop.program}-copy"}).text
    slugs = set(re.findall(rf">({re.escape(shop.program)}-copy(?:-\d+)?)<", listed))
    assert slugs == {f"{shop.program}-copy"} | {f"{shop.program}-copy-{n}" for n in range(2, 11)}
