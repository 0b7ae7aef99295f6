"""A bounded load smoke through the real server: a burst of orders and clicks at the same time. Counts only: every
answer is a 2xx/3xx (never a 5xx), every order is readable by id, every click that got an id is in PostgreSQL after
ingest. No timing is asserted (bench/ measures speed)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import psycopg2
import pytest
import redis
from django.conf import settings

from tests.system.stack import concurrently, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ORDERS, ORDER_CONNECTIONS = 800, 16
CLICKS, CLICK_CONNECTIONS = 8_000, 32
REFERRERS = 20
REFERRED_EVERY = 4  # a quarter of the orders come with a referral code, as in a shop whose program works well
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


class Client:
    """One keep-alive HTTP connection (reopened when the server closes it, as gunicorn's sync workers do)."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None):
        parts = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self.headers = headers or {}

    def request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None):
        payload = json.dumps(body).encode() if body is not None else None
        all_headers = {**self.headers, **(headers or {})}
        if payload is not None:
            all_headers["Content-Type"] = "application/json"
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=payload, headers=all_headers)
                response = self.conn.getresponse()
                data = response.read()
                if response.will_close:
                    self.conn.close()
                return response.status, response.getheader("Location"), data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection between two requests: reconnect once.
                self.conn.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


def _split(total: int, parts: int) -> list[range]:
    size = -(-total // parts)
    return [range(i * size, min(total, (i + 1) * size)) for i in range(parts)]


@pytest.mark.parametrize("config", ["procfile", "dockerfile"])
def test_a_burst_of_orders_and_clicks_never_answers_5xx_and_loses_nothing(stacks, config):
    # A stack of its own: the orders' rewards are still being decided when the test ends.
    stack = stacks(config, name=f"load-{config}")
    shop = stack.createmerchant()
    api = stack.api(shop.live_key)
    codes = []
    for i in range(REFERRERS):
        joined = api.post(
            "/api/v1/participants",
            json={"program": shop.program, "external_id": f"ref-{i}", "email": f"ref-{i}@example.pl"},
        )
        assert joined.status_code == 201, joined.text
        codes.append(joined.json()["code"])
    auth = {"Authorization": f"Bearer {shop.live_key}"}

    order_results: list[list[tuple[int, str]]] = []
    click_results: list[list[tuple[int, str | None, bool]]] = []

    def orders(part: int) -> list[tuple[int, str]]:
        client, out = Client(stack.base_url, auth), []
        for n in _split(ORDERS, ORDER_CONNECTIONS)[part]:
            order_id = f"L-{n}"
            order = {
                "order_id": order_id,
                "amount": f"{10 + n % 500}.{n % 100:02d}",
                "currency": "PLN",
                "customer": {"external_id": f"cust-{n}", "email": f"cust-{n}@example.pl"},
            }
            if n % REFERRED_EVERY == 0:  # a referred order: attributed, then scored and rewarded by the worker
                order["code"] = codes[n % REFERRERS]
            status, _location, _body = client.request("POST", "/api/v1/conversions", order)
            out.append((status, order_id))
        client.close()
        return out

    def clicks(part: int) -> list[tuple[int, str | None, bool]]:
        client, out = Client(stack.base_url), []
        for n in _split(CLICKS, CLICK_CONNECTIONS)[part]:
            bot = n % 20 == 0
            status, location, _body = client.request(
                "GET", f"/r/{codes[n % REFERRERS]}?utm_source=load&utm_campaign=c{n % 7}",
                headers={"User-Agent": BOT if bot else BROWSER},
            )  # fmt: skip
            click_id = parse_qs(urlsplit(location or "").query).get("rs_click", [None])[0]
            out.append((status, click_id, bot))
        client.close()
        return out

    # Orders and clicks arrive at the same time, as in a sale.
    started = time.monotonic()
    order_thread = threading.Thread(target=lambda: order_results.extend(concurrently(ORDER_CONNECTIONS, orders)))
    order_thread.start()
    click_results.extend(concurrently(CLICK_CONNECTIONS, clicks, timeout=900))
    order_thread.join(900)
    assert not order_thread.is_alive()
    print(f"{ORDERS} orders and {CLICKS} clicks answered in {time.monotonic() - started:.1f} s ({config})")

    placed = [row for part in order_results for row in part]
    assert len(placed) == ORDERS
    assert Counter(status for status, _ in placed) == {201: ORDERS}
    followed = [row for part in click_results for row in part]
    assert len(followed) == CLICKS
    assert Counter(status for status, _, _ in followed) == {302: CLICKS}
    human_ids = {click_id for _, click_id, bot in followed if not bot}
    assert None not in human_ids
    assert len(human_ids) == sum(1 for _, _, bot in followed if not bot)

    # Every order is readable by its id.
    def read(part: int) -> Counter:
        client, seen = Client(stack.base_url, auth), Counter()
        for _status, order_id in placed[part::ORDER_CONNECTIONS]:
            seen[client.request("GET", f"/api/v1/conversions/{order_id}")[0]] += 1
        client.close()
        return seen

    assert sum(concurrently(ORDER_CONNECTIONS, read), Counter()) == {200: ORDERS}

    # Every click that got an id reaches PostgreSQL once beat's ingest has drained the stream.
    broker = redis.Redis.from_url(settings.REDIS_URL)
    stream = f"{stack.namespace}:clicks"
    wait_for(lambda: broker.xlen(stream) == 0, timeout=180, what="the click stream to drain")
    all_ids = [click_id for _, click_id, _ in followed if click_id]
    with psycopg2.connect(stack.env["DATABASE_URL"]) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE NOT is_bot) FROM tracking_click WHERE click_id = ANY(%s::uuid[])",
            [all_ids],
        )
        stored, stored_human = cursor.fetchone()
    conn.close()
    assert stored == len(all_ids)
    assert stored_human == len(human_ids)
    assert stack.server_errors() == []
