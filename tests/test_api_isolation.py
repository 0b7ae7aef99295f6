"""Merchant B's API key on every route, with merchant A's ids: 404 (or nothing), and nothing of A's changes."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import URLResolver, get_resolver

from programs.models import Participant
from referral_saas.webhooks.models import WebhookEndpoint
from rewards.models import LedgerEntry, Reward
from tests.factories import ProgramFactory, join
from tracking.models import Conversion, Refund

pytestmark = pytest.mark.django_db


@pytest.fixture
def a_data(tenant):
    program = ProgramFactory(merchant=tenant.merchant, slug="a-program")
    participant, code = join(program, email="a-person@a.example", external_id="a-ext-1")
    tenant.api.post(
        "/api/v1/conversions",
        {
            "order_id": "A-1",
            "amount": "50.00",
            "currency": "PLN",
            "code": code.code,
            "customer": {"email": "a-buyer@a.example"},
        },
        format="json",
    )
    tenant.api.post("/api/v1/conversions/A-1/refunds", {"amount": "5.00", "refund_id": "a-r-1"}, format="json")
    endpoint = tenant.api.post("/api/v1/webhook-endpoints", {"url": "https://hooks.a.example/in"}, format="json")
    hook = tenant.api.post(
        "/api/v1/hooks", {"target_url": "https://hooks.a.example/zap", "event": "reward.issued"}, format="json"
    )
    reward, item = _a_reward_and_catalog(program, participant, code)
    return {
        "program": program,
        "participant": participant,
        "code": code,
        "endpoint_id": endpoint.json()["id"],
        "hook_id": hook.json()["id"],
        "reward": reward,
        "item": item,
    }


def _a_reward_and_catalog(program, participant, code):
    """An issued coupon of A's referrer, and A's catalog with points to spend."""
    from rewards.models import CatalogItem, Kind, Reward
    from rewards.services import conversion_process, rewards_release_due
    from tests.rewards.helpers import rule

    rule(program, hold_days=0)
    rule(program, kind=Kind.POINTS, value=100, hold_days=0)
    conversion = Conversion.objects.for_merchant(program.merchant).get(order_id="A-1")
    conversion_process(merchant=program.merchant, conversion_id=conversion.pk)
    rewards_release_due()
    reward = Reward.objects.for_merchant(program.merchant).get(kind=Kind.AMOUNT_COUPON)
    item = CatalogItem.objects.for_merchant(program.merchant).create(
        program=program, name="5 PLN voucher", points=10, kind=Kind.AMOUNT_COUPON, value=5
    )
    return reward, item


def _snapshot(tenant):
    conversion = Conversion.objects.for_merchant(tenant.merchant).get(order_id="A-1")
    participant = Participant.objects.for_merchant(tenant.merchant).get(external_id="a-ext-1")
    return (
        conversion.refunded_amount,
        conversion.status,
        participant.name,
        participant.email,
        Refund.objects.for_merchant(tenant.merchant).count(),
        list(WebhookEndpoint.objects.for_merchant(tenant.merchant).values_list("pk", "url", "enabled")),
        list(Reward.objects.for_merchant(tenant.merchant).order_by("pk").values_list("pk", "status", "value")),
        list(LedgerEntry.objects.for_merchant(tenant.merchant).order_by("pk").values_list("pk", "amount")),
    )


def _api_routes(patterns=None, prefix: str = "") -> list[tuple[str, type]]:
    """(route, view class) of every URL pattern under /api/v1/, found by walking the URL resolver."""
    found = []
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found += _api_routes(pattern.url_patterns, route)
        elif route.startswith("api/v1/"):
            found.append((route, pattern.callback.view_class))
    return found


def _methods(view_class) -> list[str]:
    return [m for m in ("get", "post", "put", "patch", "delete") if hasattr(view_class, m)]


PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")


def _a_values(a) -> dict[str, list[str]]:
    """A's value(s) for each path parameter name of the API (every way a route can name the row)."""
    return {
        "slug": [a["program"].slug],
        "ref": [a["participant"].external_id, str(a["participant"].pk)],
        "code": [a["code"].code],
        "order_id": ["A-1"],
        "reward_id": [str(a["reward"].pk)],
        "endpoint_id": [str(a["endpoint_id"])],
        "hook_id": [str(a["hook_id"])],
    }


def _a_body(operation: dict, a) -> dict:
    """The operation's documented request example, naming A's rows where it names a row."""
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return {}
    examples = list(content.get("examples", {}).values())
    assert examples, f"{operation['operationId']}: the walk takes its body from the request example; add one"
    body = dict(examples[0]["value"])
    names = {"item": str(a["item"].pk), "program": a["program"].slug, "code": a["code"].code}
    return {key: names.get(key, value) for key, value in body.items()}


def _calls_with_a_ids(client, a) -> list[tuple[str, str, dict | None]]:
    """Every API route with a path parameter, each method its view has, filled with A's ids: (method, path, body).
    A route the walk cannot fill fails here, so a new route is covered or named."""
    schema = json.loads(client.get("/api/schema/?format=json").content)
    values = _a_values(a)
    calls = []
    for route, view_class in _api_routes():
        names = PARAMETER.findall(route)
        if not names:
            continue
        unknown = [name for name in names if name not in values]
        assert not unknown, f"{route}: give the walk merchant A's value for {unknown} in _a_values"
        assert len(names) == 1, f"{route}: the walk fills one path parameter"
        for method in _methods(view_class):
            operation = schema["paths"]["/" + PARAMETER.sub(r"{\1}", route)][method]
            body = _a_body(operation, a) if method in ("post", "put", "patch") else None
            for value in values[names[0]]:
                calls.append((method, "/" + PARAMETER.sub(lambda _match, v=value: v, route), body))
    return calls


def _call(api, method: str, path: str, body: dict | None):
    if body is None:
        return getattr(api, method)(path)
    return getattr(api, method)(path, body, format="json")


def _a_data_in(content: bytes, a) -> list[str]:
    text = content.decode()
    marks = [
        "a-person@a.example",
        "a-buyer@a.example",
        "hooks.a.example",
        a["participant"].name,
        a["reward"].coupon_code,
    ]
    return [mark for mark in marks if mark and mark in text]


def test_every_route_with_another_merchants_ids_is_404_and_changes_nothing(tenant, other_tenant, a_data):
    calls = _calls_with_a_ids(tenant.api, a_data)
    routes = {path.split("/")[3] for _method, path, _body in calls}
    assert {"programs", "participants", "codes", "conversions", "rewards", "webhook-endpoints"} <= routes
    before = _snapshot(tenant)

    for method, path, body in calls:
        response = _call(other_tenant.api, method, path, body)
        assert response.status_code == 404, (method, path, response.status_code, response.content)
        assert response.json()["error"]["code"] == "not_found", (method, path)
        assert _a_data_in(response.content, a_data) == [], (method, path)

    assert _snapshot(tenant) == before
    # Control: the same calls as merchant A succeed (reads first: the writes use rows up).
    for method, path, body in sorted(calls, key=lambda call: call[0] != "get"):
        response = _call(tenant.api, method, path, body)
        assert 200 <= response.status_code < 300, (method, path, response.status_code, response.content)


def test_bodies_and_filters_naming_another_merchants_rows_find_nothing(tenant, other_tenant, a_data):
    code = a_data["code"].code
    before = _snapshot(tenant)
    for method, path, body in [
        ("get", "/api/v1/stats?program=a-program", None),
        ("post", "/api/v1/participants", {"program": "a-program", "external_id": "a-ext-1", "name": "Hijacked"}),
        ("post", "/api/v1/referrals", {"code": code, "customer": {"email": "x@b.example"}}),
        ("post", "/api/v1/conversions", {"order_id": "B-1", "amount": "9.00", "currency": "PLN", "code": code}),
    ]:
        response = _call(other_tenant.api, method, path, body)
        assert response.status_code in (400, 404, 422), (path, response.status_code, response.content)
        assert _a_data_in(response.content, a_data) == [], path
    assert _snapshot(tenant) == before


def test_lists_of_another_merchant_are_empty(tenant, other_tenant, a_data):
    for path in (
        "/api/v1/programs",
        "/api/v1/participants",
        "/api/v1/referrals",
        "/api/v1/conversions",
        "/api/v1/webhook-endpoints",
        "/api/v1/rewards",
        "/api/v1/rewards?participant=a-ext-1",
    ):
        body = other_tenant.api.get(path).json()
        items = body["results"] if isinstance(body, dict) else body
        assert items == [], path
        mine = tenant.api.get(path).json()
        assert mine["results"] if isinstance(mine, dict) else mine, f"control: A sees its own {path}"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/codes/AB%00CD",
        "/api/v1/conversions/AB%00CD",
        "/api/v1/conversions/AB%00CD/refunds",
        "/api/v1/participants/AB%00CD",
        "/api/v1/participants/%1F",
    ],
)
def test_control_characters_in_api_paths_are_a_json_404(tenant, path):
    response = tenant.api.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_control_characters_in_links_are_a_404(client, db):
    assert client.get("/r/AB%00CD").status_code == 404
    assert client.get("/accounts/invitations/%00/").status_code == 404


def test_analysts_cannot_run_write_actions_in_the_admin(tenant):
    from referral_saas.tenancy.models import ApiKey, Membership
    from tests.conftest import staff_client
    from tests.factories import MembershipFactory

    analyst = MembershipFactory(merchant=tenant.merchant, role=Membership.Role.ANALYST)
    client = staff_client(analyst.user, tenant.merchant)
    client.post("/admin/tenancy/apikey/", {"action": "revoke", "_selected_action": [tenant.api_key.pk]})
    assert ApiKey.objects.for_merchant(tenant.merchant).get(pk=tenant.api_key.pk).revoked_at is None
    assert tenant.api.get("/api/v1/me").status_code == 200
