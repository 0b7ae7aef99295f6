"""Hostile input through the real server, byte for byte: what only a real HTTP server sees (chunked bodies, lying
or missing lengths, raw control characters, oversized bodies) and what attackers send first. Always a clear 4xx
(JSON under /api/), nothing written, never a 5xx, never a dropped connection."""

from __future__ import annotations

import http.client
import json
import socket
from urllib.parse import urlsplit

import pytest
import requests

pytestmark = pytest.mark.slow


def raw(stack, request: bytes, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """Send exactly `request` and read the whole answer (the server closes or says how long it is)."""
    parts = urlsplit(stack.base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while True:
            head_end = data.find(b"\r\n\r\n")
            if head_end >= 0:
                head = data[:head_end].decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in head[1:])}
                length = headers.get("content-length")
                if length is not None and len(data) - head_end - 4 >= int(length):
                    break
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head_end = data.find(b"\r\n\r\n")
    assert head_end > 0, f"no HTTP answer: {data[:200]!r}"
    status = int(data.split(b" ", 2)[1])
    return status, headers, data[head_end + 4 :]


def _request(stack, method: str, path: str, key: str, body: bytes, extra: list[str]) -> bytes:
    host = urlsplit(stack.base_url).netloc
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Authorization: Bearer {key}", "Connection: close", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _chunked(body: bytes, size: int = 7) -> bytes:
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks) + b"0\r\n\r\n"


@pytest.fixture(scope="module")
def shop(stack):
    return stack.createmerchant()


def test_a_chunked_body_is_read_like_any_other(stack, shop):
    body = json.dumps({"program": shop.program, "external_id": "chunky", "email": "chunky@example.pl"}).encode()
    status, _headers, answer = raw(
        stack,
        _request(stack, "POST", "/api/v1/participants", shop.live_key, _chunked(body),
                 ["Content-Type: application/json", "Transfer-Encoding: chunked"]),
    )  # fmt: skip
    assert status == 201, answer
    assert json.loads(answer)["external_id"] == "chunky"


def test_an_oversized_body_chunked_or_not_is_a_413_and_stores_nothing(stack, shop):
    big = json.dumps({"program": shop.program, "external_id": "big", "name": "x" * 100_000}).encode()
    for extra, body in (
        ([f"Content-Length: {len(big)}"], big),
        (["Transfer-Encoding: chunked"], _chunked(big, 8192)),
    ):
        request = _request(
            stack, "POST", "/api/v1/participants", shop.live_key, body, ["Content-Type: application/json", *extra]
        )
        status, _headers, answer = raw(stack, request)
        assert status == 413, answer
        assert json.loads(answer)["error"]["code"] == "payload_too_large"
    assert stack.api(shop.live_key).get("/api/v1/participants/big").status_code == 404


def _json_request(body: bytes, content_type: str = "application/json", length: str | None = None) -> list[str]:
    return [f"Content-Type: {content_type}", f"Content-Length: {length if length is not None else len(body)}"]


MALFORMED = {
    "truncated": (b'{"broken', {}),
    "a list": (b"[]", {}),
    "not json": (b"{}", {"content_type": "text/plain"}),
    "latin-1": ('{"order_id": "\xe9\xe9"}'.encode("latin-1"), {"content_type": "application/json; charset=latin-1"}),
    "bad utf-8": (b'{"order_id": "\xff\xfe"}', {}),
    "lone surrogate": (b'{"order_id": "\\ud800x"}', {}),
    "nested": (b"[" * 100_000 + b"]" * 100_000, {}),
    "arabic length": (b"{}", {"length": "\u0663"}),
    "negative length": (b"{}", {"length": "-1"}),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_bodies_are_a_4xx(stack, shop, case):
    body, options = MALFORMED[case]
    headers = _json_request(body, options.get("content_type", "application/json"), options.get("length"))
    request = _request(stack, "POST", "/api/v1/conversions", shop.live_key, body, headers)
    status, answer_headers, answer = raw(stack, request)
    assert 400 <= status < 500, (status, answer)
    if answer_headers.get("content-type", "").startswith("application/json"):
        assert json.loads(answer)["error"]["code"]
    else:  # refused by gunicorn itself as invalid HTTP, before our code
        assert b"Bad Request" in answer or status == 411


def test_hostile_orders_are_refused_field_by_field_and_store_nothing(stack, shop):
    api = stack.api(shop.live_key)
    base = {"order_id": "X-1", "amount": "10.00", "currency": "PLN", "customer": {"email": "x@example.pl"}}
    hostile = [
        {"amount": "-5.00"}, {"amount": "1e999"}, {"amount": "NaN"}, {"amount": 10.5}, {"amount": "99999999999999999"},
        {"amount": "10.001"}, {"currency": "XXX"}, {"currency": "P L N"}, {"currency": ""}, {"order_id": "a\x00b"},
        {"order_id": ""}, {"order_id": "x" * 500}, {"customer": []},
        {"customer": {"email": "a@" + "\ufdfa" * 14 + ".pl"}},
        {"customer": {"email": "no-at-sign"}}, {"occurred_at": "yesterday"}, {"occurred_at": "99999-01-01T00:00:00Z"},
        {"code": "\x00"}, {"click_id": "not-a-click"}, {"amount": None}, {"order_id": {"$gt": ""}},
    ]  # fmt: skip
    for change in hostile:
        response = api.post("/api/v1/conversions", json={**base, **change})
        assert 400 <= response.status_code < 500, (change, response.status_code, response.text)
        assert response.json()["error"]["code"], change
    assert api.get("/api/v1/conversions").json()["results"] == []


def test_another_merchants_ids_are_404_and_reveal_nothing(stack, shop):
    other = stack.createmerchant()
    mine = stack.api(shop.live_key)
    theirs = stack.api(other.live_key)
    anna = mine.post(
        "/api/v1/participants", json={"program": shop.program, "external_id": "secret-anna", "email": "s@example.pl"}
    ).json()
    order = mine.post(
        "/api/v1/conversions",
        json={"order_id": "SECRET-1", "amount": "10.00", "currency": "PLN", "customer": {"email": "c@example.pl"}},
    )
    assert order.status_code == 201
    for method, path, body in (
        ("GET", f"/api/v1/participants/{anna['id']}", None),
        ("GET", "/api/v1/participants/secret-anna", None),
        ("GET", f"/api/v1/codes/{anna['code']}", None),
        ("GET", "/api/v1/conversions/SECRET-1", None),
        ("POST", "/api/v1/conversions/SECRET-1/refunds", {"amount": "1.00", "refund_id": "steal"}),
        ("GET", f"/api/v1/participants/{anna['id']}/points", None),
        ("POST", f"/api/v1/participants/{anna['id']}/points/redeem", {"item": "1"}),
    ):
        response = theirs.request(method, path, json=body)
        assert response.status_code == 404, (path, response.status_code, response.text)
        assert "secret" not in response.text.lower().replace("secret-anna", "")
        assert "secret-anna" not in response.text
    assert mine.get("/api/v1/conversions/SECRET-1").json()["refunded_amount"] in ("0.00", "0")


def test_a_link_with_control_characters_still_redirects(stack, shop):
    api = stack.api(shop.live_key)
    anna = api.post(
        "/api/v1/participants", json={"program": shop.program, "external_id": "link-anna", "email": "l@example.pl"}
    ).json()
    path = urlsplit(anna["link"]).path
    for query in ("?utm_source=%00%01%7f&utm_campaign=%E2%80%A8x", "?utm_source=" + "A" * 3000, "?%ff%fe=%c0%af"):
        response = requests.get(f"{stack.base_url}{path}{query}", allow_redirects=False, timeout=30)
        assert response.status_code == 302, (query, response.status_code)
        assert "%00" not in response.headers["Location"]
    for code in ("%00", "A" * 300, "%E2%80%AE", "..%2F..%2Fetc"):
        response = requests.get(f"{stack.base_url}/r/{code}", allow_redirects=False, timeout=30)
        assert response.status_code == 404, (code, response.status_code)
    # A raw control character in a header is not HTTP: gunicorn refuses it (400) before our code runs.
    host = urlsplit(stack.base_url).netloc
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Mozilla/5.0\x01\r\nConnection: close\r\n\r\n"
    assert raw(stack, request.encode())[0] == 400


def test_a_forged_portal_sign_in_is_refused_without_an_error(stack, shop):
    for sig in ("%C3%A9", "%00", "x" * 5000, ""):
        response = requests.get(
            f"{stack.base_url}/en/p/{shop.slug}/{shop.program}/sso/?sig={sig}&customer=a&email=a@example.pl&ts=1",
            allow_redirects=False, timeout=30,
        )  # fmt: skip
        assert 300 <= response.status_code < 500, (sig, response.status_code)


def _csrf_cookie(stack) -> str:
    page = requests.get(f"{stack.base_url}/accounts/login/", timeout=30)
    assert page.status_code == 200
    return page.cookies["csrftoken"]


def _form_post(stack, path: str, token: str, charset: str, body: bytes) -> bytes:
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: {urlsplit(stack.base_url).netloc}",
        f"Cookie: csrftoken={token}",
        f"Referer: {stack.base_url}/",
        f"Content-Type: application/x-www-form-urlencoded; charset={charset}",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def test_a_form_post_in_another_charset_is_a_400_with_debug_on_and_off(stack, shop):
    """Django raised again each time the form was read: with DEBUG on its error page read it a second time and
    gunicorn answered its own bare 500 (no request id)."""
    token = _csrf_cookie(stack)
    portal = f"/en/p/{shop.slug}/{shop.program}"
    pages = ["/accounts/login/", "/accounts/signup/", "/accounts/password/reset/", "/i18n/setlang/", "/admin/login/",
             f"{portal}/join/", f"{portal}/invite/"]  # fmt: skip
    body = f"csrfmiddlewaretoken={token}&login=%E9&email=%E9&password=x&language=pl".encode()
    for path in pages:
        for charset in ("latin-1", "utf-16", "utf-32", "xyz"):
            status, headers, answer = raw(stack, _form_post(stack, path, token, charset, body))
            assert status == 400, (stack.config.name, path, charset, status, answer[:300])
            assert headers.get("x-request-id"), (path, charset)  # answered by our code, not gunicorn's fallback
            if stack.config.name == "dockerfile":  # DEBUG off: the friendly page
                assert b"We could not understand that request." in answer, (path, charset)
    # The same post in UTF-8 is read (the CSRF token found: the sign-in form again, not a 400 or a 403).
    assert raw(stack, _form_post(stack, "/accounts/login/", token, "utf-8", body))[0] == 200


def _then_get(stack, method: str, path: str, body: bytes, headers: dict[str, str], then: str) -> tuple[int, str, int]:
    """`method path` with `body` on a kept-alive connection, then GET `then` on the same connection (or on a new
    one, when the first answer said it closes): (first status, its Connection header, second status). A dropped
    connection raises (http.client never retries)."""
    parts = urlsplit(stack.base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers)
        first = connection.getresponse()
        first.read()
        said = (first.getheader("Connection") or "").lower()
        kept = connection.sock
        assert (kept is None) == (said == "close"), said  # http.client closes exactly when told to
        connection.request("GET", then, headers={k: v for k, v in headers.items() if k == "Authorization"})
        second = connection.getresponse()
        second.read()
        if said != "close":
            assert connection.sock is kept  # the same connection carried the second request
        return first.status, said, second.status
    finally:
        connection.close()


def test_a_kept_alive_connection_survives_a_body_nobody_read(stack, shop):
    """gunicorn's threaded workers said keep-alive, drained at most 64 KB of the body and closed the socket: the
    next request on the connection met RemoteDisconnected."""
    api = stack.api(shop.live_key)
    anna = api.post(
        "/api/v1/participants", json={"program": shop.program, "external_id": "drain-anna", "email": "d@example.pl"}
    ).json()
    key = {"Authorization": f"Bearer {shop.live_key}"}
    big_json = json.dumps({"program": shop.program, "external_id": "too-big", "name": "x" * 70_000}).encode()
    for method, path, body, headers, status, then in (
        ("POST", "/api/v1/participants", big_json, {**key, "Content-Type": "application/json"}, 413, "/api/v1/me"),
        ("POST", "/healthz", b"x" * 200_000, {"Content-Type": "text/plain"}, 403, "/healthz"),
        ("POST", f"/r/{anna['code']}", b"x" * 200_000, {"Content-Type": "text/plain"}, 403, "/healthz"),
        ("POST", "/accounts/login/", b"login=" + b"x" * 3_000_000,
         {"Content-Type": "application/x-www-form-urlencoded"}, 403, "/healthz"),
    ):  # fmt: skip
        first, said, second = _then_get(stack, method, path, body, headers, then)
        assert first == status, (path, first)
        assert second == 200, (path, said, second)
    assert api.get("/api/v1/participants/too-big").status_code == 404


def test_a_body_too_large_to_drain_gets_an_answer_that_says_close(stack):
    """A body over what is drained (10 MB) is not read; the answer says so, and the connection then ends cleanly
    (the client, which waited for the answer, sent none of it)."""
    host = urlsplit(stack.base_url).netloc
    request = f"POST /healthz HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain\r\nContent-Length: 20000000\r\n\r\n"
    status, headers, _answer = raw(stack, request.encode())
    assert status == 403
    assert headers["connection"].lower() == "close"
