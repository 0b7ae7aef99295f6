"""Every page outside the shop API and the admins, with every HTTP method, as a visitor, as a signed-in merchant and
as a signed-in portal customer: an answer (a page, a redirect, a 4xx), never a 5xx. The routes come from the URL
resolver, so a new page is walked without anyone adding it here. (The shop API has its own walks, and the admin
sites theirs.)"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.conftest import staff_client

pytestmark = pytest.mark.django_db

METHODS = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]
WALKED_ELSEWHERE = ("api/v1/", "admin/", "ops/")


def _routes(patterns=None, prefix: str = "") -> list[str]:
    routes = []
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            routes += _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            routes.append(prefix + str(pattern.pattern))
    return routes


ROUTES = [route for route in _routes() if not route.startswith(WALKED_ELSEWHERE)]


def _fill(route: str, values: dict[str, str]) -> str:
    """A path for `route` (path() converters or a regex) with the walk's values for its parameters."""

    def value(name: str) -> str:
        assert name in values, f"the walk has no value for the parameter {name!r} of {route!r}: add one"
        return values[name]

    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: value(m.group(1)), route)
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: value(m.group(1)), path)
    return "/" + path.replace("^", "").replace("$", "")


@pytest.fixture
def walk(tenant, program, referrer):
    participant, code = referrer
    values = {
        "code": code.code,
        "merchant": program.merchant.slug,
        "program": program.slug,
        "rest": "leaderboard/",
        "token": "not-a-token",
        "channel": "whatsapp",
        "fmt": "svg",
        "key": "not-a-key",
        "uidb36": "1",
        "provider": "shopify",
    }

    def customer() -> Client:
        client = Client()
        session = client.session
        session[f"portal:{program.pk}"] = participant.pk
        session.save()
        return client

    clients = {
        "visitor": Client,
        "merchant staff": lambda: staff_client(tenant.owner, tenant.merchant),
        "portal customer": customer,
    }
    # Deleting the portal account erases the customer: last.
    paths = sorted((_fill(route, values) for route in ROUTES), key=lambda path: path.endswith("/delete/"))
    return paths, clients


def test_the_walk_covers_the_pages_people_open():
    expected = {
        "", "r/<text:code>", "healthz", "readyz", "demo-shop/", "i18n/setlang/", "api/docs/", "api/redoc/",
        "api/schema/", "accounts/login/", "accounts/signup/", "en/p/<slug:merchant>/<slug:program>/join/",
    }  # fmt: skip
    assert expected - set(ROUTES) == set()


@pytest.mark.parametrize("debug", [False, True], ids=["DEBUG off", "DEBUG on"])
def test_no_page_answers_any_method_with_a_server_error(walk, settings, debug):
    settings.DEMO_SHOP, settings.DEBUG = True, debug
    paths, clients = walk
    errors = []
    for path in paths:
        for method in METHODS:
            for who, make_client in clients.items():
                client = make_client()
                client.raise_request_exception = False
                response = client.generic(method, path)
                if response.status_code >= 500:
                    errors.append(f"{method} {path} as {who}: {response.status_code}")
    assert errors == [], "\n".join(errors)


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/", "/api/schema/"])
def test_the_api_documentation_answers_options_with_the_methods_it_allows(client, path):
    response = client.options(path)
    assert response.status_code == 200
    assert "GET" in response["Allow"]


def test_the_demo_shop_is_not_found_where_it_was_never_set_up(client, settings):
    settings.DEMO_SHOP = True
    assert client.get("/demo-shop/").status_code == 404
    assert client.post("/demo-shop/", {"order_id": "D1", "amount": "10"}).status_code == 404
