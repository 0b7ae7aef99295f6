"""The whole referral loop, as a shop and its customers drive it, through gunicorn, a worker and beat, over HTTP.

join -> link -> click (302) -> an order by click id and one by code -> rewards issued -> a coupon used -> a partial
and a full refund -> clawback -> signed webhooks, verified with the `standardwebhooks` package. Every count comes
from the API.
"""

from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import psycopg2
import pytest
import requests
from standardwebhooks.webhooks import Webhook

from tests.system.stack import wait_for

pytestmark = pytest.mark.slow

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def _results(api, path: str, **params) -> list[dict]:
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def _rewards_by_order(api, participant_id: int, status: str) -> dict[str, dict]:
    rewards = _results(api, "/api/v1/rewards", participant=participant_id, status=status)
    return {reward["order_id"]: reward for reward in rewards}


# The loop on both brokers: RabbitMQ (quorum queues, publisher confirms) runs the Procfile's processes too.
@pytest.mark.parametrize("stack", ["procfile", "dockerfile", "procfile+rabbitmq"], indirect=True)
def test_join_click_order_reward_refund_clawback_and_signed_webhooks(stack, webhook_receiver):
    shop = stack.createmerchant()
    api = stack.api(shop.live_key)
    endpoint = api.post("/api/v1/webhook-endpoints", json={"url": webhook_receiver.url})
    assert endpoint.status_code == 201, endpoint.text
    secret = endpoint.json()["secret"]

    # 1. Anna joins through the shop's API and gets her code and link.
    joined = api.post(
        "/api/v1/participants",
        json={"program": shop.program, "external_id": "anna-1", "email": "anna@example.pl", "name": "Anna"},
    )
    assert joined.status_code == 201, joined.text
    anna = joined.json()
    assert anna["link"].startswith(stack.base_url)

    # 2. Bob follows her link: a 302 to the landing page with the referral and the click id.
    click = requests.get(anna["link"], allow_redirects=False, headers={"User-Agent": BROWSER}, timeout=30)
    assert click.status_code == 302
    query = parse_qs(urlsplit(click.headers["Location"]).query)
    assert query["ref"] == [anna["code"]]
    click_id = query["rs_click"][0]

    # 3. Bob orders with the click id the snippet kept; Cleo types Anna's code at checkout.
    bob = api.post(
        "/api/v1/conversions",
        json={
            "order_id": "B-1",
            "amount": "200.00",
            "currency": "PLN",
            "click_id": click_id,
            "customer": {"external_id": "bob-1", "email": "bob@example.pl"},
        },
    )
    assert bob.status_code == 201, bob.text
    assert bob.json()["attributed"] is True
    assert bob.json()["referral"]["referrer"]["id"] == anna["id"]
    cleo = api.post(
        "/api/v1/conversions",
        json={
            "order_id": "C-1",
            "amount": "300.00",
            "currency": "PLN",
            "code": anna["code"].lower(),
            "customer": {"external_id": "cleo-1", "email": "cleo@example.pl"},
        },
    )
    assert cleo.status_code == 201, cleo.text
    assert cleo.json()["attributed"] is True

    # 4. The worker scores both orders and issues Anna's rewards (10% of each order, no hold in the demo program).
    issued = wait_for(
        lambda: (found := _rewards_by_order(api, anna["id"], "issued")) and len(found) == 2 and found,
        timeout=90,
        what="both referrer rewards to be issued",
    )
    assert Decimal(issued["B-1"]["value"]) == Decimal("20.00")
    assert Decimal(issued["C-1"]["value"]) == Decimal("30.00")
    assert issued["B-1"]["coupon_code"]
    assert issued["C-1"]["coupon_code"]

    # 5. Anna uses the coupon she got for Cleo's order.
    redeemed = api.post(f"/api/v1/rewards/{issued['C-1']['id']}/redeem")
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["status"] == "redeemed"

    # 6. Bob returns a quarter of his order: his unused 10% reward shrinks to 10% of what he kept.
    partial = api.post("/api/v1/conversions/B-1/refunds", json={"amount": "50.00", "refund_id": "rf-b-1"})
    assert partial.status_code == 201, partial.text
    wait_for(
        lambda: Decimal(api.get(f"/api/v1/rewards/{issued['B-1']['id']}").json()["value"]) == Decimal("15.00"),
        what="the partial refund to pro-rate Bob's order's reward",
    )
    # 7. Cleo returns everything: the coupon Anna already used is clawed back.
    full = api.post("/api/v1/conversions/C-1/refunds", json={"amount": "300.00", "refund_id": "rf-c-1"})
    assert full.status_code == 201, full.text
    wait_for(
        lambda: api.get(f"/api/v1/rewards/{issued['C-1']['id']}").json()["status"] == "clawed_back",
        what="the used coupon to be clawed back",
    )
    over = api.post("/api/v1/conversions/C-1/refunds", json={"amount": "0.01", "refund_id": "rf-c-2"})
    assert over.status_code == 422, over.text  # nothing left to refund

    # Counts, from the API.
    conversions = {c["order_id"]: c for c in _results(api, "/api/v1/conversions")}
    assert set(conversions) == {"B-1", "C-1"}
    assert Decimal(conversions["B-1"]["refunded_amount"]) == Decimal("50.00")
    assert Decimal(conversions["C-1"]["refunded_amount"]) == Decimal("300.00")
    referrals = _results(api, "/api/v1/referrals", referrer=anna["id"])
    assert len(referrals) == 2
    referrer_rewards = [r for r in _results(api, "/api/v1/rewards", participant=anna["id"]) if r["side"] == "referrer"]
    assert sorted(r["order_id"] for r in referrer_rewards) == ["B-1", "C-1"]  # one per order, never two

    # 8. The shop received every event, each signed per Standard Webhooks and verified with its secret.
    expected = {"participant.created", "referral.created", "conversion.attributed", "reward.issued"}
    expected.add("reward.clawed_back")
    wait_for(
        lambda: expected <= {event["type"] for event in webhook_receiver.events()},
        timeout=90,
        what=f"webhooks {sorted(expected)}",
    )
    verifier = Webhook(secret)
    for headers, body in webhook_receiver.deliveries:
        verifier.verify(body, headers)  # raises on a bad signature or a stale timestamp
    with pytest.raises(Exception, match="signature"):
        verifier.verify(webhook_receiver.deliveries[0][1] + b" ", webhook_receiver.deliveries[0][0])
    attributed = [e for e in webhook_receiver.events() if e["type"] == "conversion.attributed"]
    assert sorted(e["data"]["order_id"] for e in attributed) == ["B-1", "C-1"]


def test_a_flash_sale_over_the_velocity_limit_is_decided_in_one_batch_and_each_review_is_told(
    stacks, own_database, webhook_receiver
):
    """Eight friends of Anna order within the hour while no worker runs (a backlog); the Procfile's worker then
    decides them in one batch: five approved, the three past the velocity limit (more than 5 referred orders of one
    referrer in an hour) held for a fraud review, each order once, and the shop hears of every order and of every
    review. No beat: nothing but the batch's task decides them (and a database of its own: other stacks run beat)."""
    stack = stacks("procfile", name="flash-sale", beat=False, worker=False, database=own_database, migrate=True)
    shop = stack.createmerchant()
    api = stack.api(shop.live_key)
    assert api.post("/api/v1/webhook-endpoints", json={"url": webhook_receiver.url}).status_code == 201
    anna = api.post(
        "/api/v1/participants", json={"program": shop.program, "external_id": "anna", "email": "anna@example.pl"}
    ).json()
    ids = {}
    for n in range(1, 9):
        order = api.post(
            "/api/v1/conversions",
            json={"order_id": f"F-{n}", "amount": "100.00", "currency": "PLN", "code": anna["code"],
                  "customer": {"external_id": f"friend-{n}", "email": f"friend{n}@example.pl"}},
        )  # fmt: skip
        assert order.status_code == 201, order.text
        ids[order.json()["id"]] = f"F-{n}"

    stack.start_worker("worker")
    database = stack.env["DATABASE_URL"]

    def stages() -> dict[str, tuple]:
        with psycopg2.connect(database) as conn, conn.cursor() as cursor:
            cursor.execute(
                "SELECT c.order_id, w.stage, w.decision FROM tracking_conversion c "
                "JOIN rewards_work w ON w.conversion_id = c.id AND w.refund_id IS NULL WHERE c.id = ANY(%s)",
                [list(ids)],
            )
            rows = cursor.fetchall()
        conn.close()
        return {order_id: (stage, decision) for order_id, stage, decision in rows}

    wait_for(lambda: len(stages()) == len(ids), timeout=120, what="every order of the backlog decided")
    decided = stages()  # one Work row per order (the dict would hide a second one: counted below)
    approved = sorted(o for o, row in decided.items() if row == ("done", "approve"))
    in_review = sorted(o for o, row in decided.items() if row == ("review", ""))
    assert (len(approved), len(in_review)) == (5, 3), decided
    # One task decided all eight (its result names its own order and how many others it decided with it). Celery
    # logs the result after the task's transaction has committed: the Work rows can be seen a moment before it.
    wait_for(
        lambda: re.search(r"rewards\.process_conversion\[[^\]]+\] succeeded in", stack.processes["worker"].output()),
        timeout=60,
        what="the batch's task reported its result",
    )
    assert re.search(r"succeeded in [\d.]+s: '(approved|review)\+7'", stack.processes["worker"].output())

    with psycopg2.connect(database) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT conversion_id) FROM rewards_work WHERE conversion_id = ANY(%s) "
            "AND refund_id IS NULL",
            [list(ids)],
        )
        assert cursor.fetchone() == (8, 8)
        cursor.execute(
            "SELECT c.order_id FROM rewards_reward r JOIN tracking_conversion c ON c.id = r.conversion_id "
            "WHERE r.conversion_id = ANY(%s)",
            [list(ids)],
        )
        paid = {row[0] for row in cursor.fetchall()}
    conn.close()
    assert paid <= set(approved)  # nothing is paid for an order waiting for a review

    def told(kind: str) -> set[str]:
        return {e["data"]["order_id"] for e in webhook_receiver.events() if e["type"] == kind}

    wait_for(
        lambda: told("fraud.flagged") == set(in_review) and told("conversion.attributed") == set(ids.values()),
        timeout=120,
        what="the shop told of every order and of each review",
    )
