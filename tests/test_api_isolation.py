"""Merchant B's API key on every route, with merchant A's ids: 404 (or nothing), and nothing of A's changes."""

from __future__ import annotations

import pytest
from django.urls import get_resolver

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
    reward, item = _a_reward_and_catalog(program, participant, code)
    return {
        "program": program,
        "participant": participant,
        "code": code,
        "endpoint_id": endpoint.json()["id"],
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


def _routes_with_a_ids(a):
    code = a["code"].code
    return [
        ("get", "/api/v1/programs/a-program", None),
        ("get", "/api/v1/stats?program=a-program", None),
        ("get", f"/api/v1/participants/{a['participant'].pk}?by=id", None),
        ("get", "/api/v1/participants/a-ext-1", None),
        ("get", f"/api/v1/codes/{code}", None),
        ("get", "/api/v1/conversions/A-1", None),
        ("get", "/api/v1/conversions/A-1/refunds", None),
        ("post", "/api/v1/conversions/A-1/refunds", {"amount": "1.00", "refund_id": "b-r-1"}),
        ("post", "/api/v1/participants", {"program": "a-program", "external_id": "a-ext-1", "name": "Hijacked"}),
        ("post", "/api/v1/referrals", {"code": code, "customer": {"email": "x@b.example"}}),
        ("post", "/api/v1/conversions", {"order_id": "B-1", "amount": "9.00", "currency": "PLN", "code": code}),
        ("get", f"/api/v1/webhook-endpoints/{a['endpoint_id']}", None),
        ("delete", f"/api/v1/webhook-endpoints/{a['endpoint_id']}", {}),
        ("get", f"/api/v1/rewards/{a['reward'].pk}", None),
        ("post", f"/api/v1/rewards/{a['reward'].pk}/redeem", {}),
        ("get", "/api/v1/participants/a-ext-1/points", None),
        ("get", f"/api/v1/participants/{a['participant'].pk}/points", None),
        ("post", "/api/v1/participants/a-ext-1/points/redeem", {"item": str(a["item"].pk)}),
    ]


def test_every_route_with_another_merchants_ids_is_refused_and_changes_nothing(tenant, other_tenant, a_data):
    before = _snapshot(tenant)
    for method, path, body in _routes_with_a_ids(a_data):
        if body is None:
            response = other_tenant.api.get(path)
        else:
            response = getattr(other_tenant.api, method)(path, body, format="json")
        assert response.status_code in (400, 404, 422), (path, response.status_code, response.content)
        assert "a-person@a.example" not in response.content.decode()
        assert "a-buyer@a.example" not in response.content.decode()
        assert "hooks.a.example" not in response.content.decode()
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


def test_the_walk_covers_every_api_route():
    """A new API route must be added to the isolation walk above."""
    covered = {
        "me",
        "programs",
        "program-detail",
        "participants",
        "participant-detail",
        "code-check",
        "referrals",
        "conversions",
        "conversion-detail",
        "refunds",
        "webhook-endpoints",
        "webhook-endpoint-detail",
        "rewards",
        "reward-detail",
        "reward-redeem",
        "participant-points",
        "participant-points-redeem",
        "stats",
    }
    resolver = get_resolver()
    api_names = set()
    for pattern in resolver.url_patterns:
        if str(pattern.pattern) == "api/v1/":
            for sub in pattern.url_patterns:
                api_names |= {p.name for p in getattr(sub, "url_patterns", [sub]) if p.name}
    assert api_names - covered == set(), f"add these routes to the isolation walk: {api_names - covered}"


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
