"""Property-based tests of the shop API against its own OpenAPI schema, on a live server.

Every call (generated or hand-made) is checked: no 500, and its status, content type and body match the schema.
Generated input alone mostly meets 404s (random ids) and 400s (random bodies), so the run is seeded with real data
(a live program, a referrer with a code, an attributed order whose coupon is issued, points and a catalog item,
webhook endpoints) and fed its ids: first one hand-made, valid call per operation, then generated calls (valid and
invalid) of which the valid ones often carry the seeded ids, then the errors that need a special setup (no key,
rate limit, oversized or non-JSON body, a reused Idempotency-Key).

The tests below read what the run saw: every operation of the schema answered at least one 2xx, and every error
status an operation documents was seen (or needs a setup this run cannot make, listed in NEEDS_SPECIAL_SETUP).
"""

from __future__ import annotations

import collections
import dataclasses
import json

import pytest
import schemathesis
from django.core.management import call_command
from django.test import override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import ProgramFactory, join, make_api_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 30  # per generation mode

# (method, status) an operation may document that this run cannot provoke, each with the test that proves it
# instead. Empty today: the rate limit (429), oversized (413) and non-JSON (415, 400) bodies, a reused (422) or
# still-running (409) Idempotency-Key and a missing key (401) are all provoked in _special_calls.
NEEDS_SPECIAL_SETUP: set[tuple[str, str]] = set()


@dataclasses.dataclass
class Run:
    operations: dict  # label ("GET /api/v1/me") -> schemathesis APIOperation
    seen: dict  # label -> Counter of statuses answered


def _operation_id(operation) -> str:
    return operation.definition.raw["operationId"]


class Recorder:
    """Calls an operation, counts the status it answered, then runs every check on the response."""

    def __init__(self, operations, auth: dict):
        self.seen = {label: collections.Counter() for label in operations}
        self.auth = auth

    def call(self, case, *, headers: dict | None = None, **kwargs):
        headers = self.auth if headers is None else headers
        response = case.call(headers=headers, **kwargs)
        self.seen[case.operation.label][response.status_code] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)
        return response


def _seed(tenant) -> dict:
    """What the operations need to answer 2xx: returns the values the calls use."""
    from rewards.models import CatalogItem, Kind, Reward
    from rewards.services import conversion_process, rewards_release_due
    from tests.rewards.helpers import rule
    from tracking.models import Conversion

    program = ProgramFactory(merchant=tenant.merchant, slug="friends")
    rule(program, hold_days=0)  # a coupon for the referrer, issued at once
    rule(program, kind=Kind.POINTS, value=100, hold_days=0)  # and points to spend
    referrer, code = join(program, email="anna@example.pl", external_id="c-42")
    for order_id, friend in (("1001", "b@x.example"), ("1002", "c@x.example"), ("1003", "d@x.example")):
        response = tenant.api.post(
            "/api/v1/conversions",
            {
                "order_id": order_id,
                "amount": "100.00",
                "currency": "PLN",
                "code": code.code,
                "customer": {"external_id": f"ext-{friend}", "email": friend},
            },
            format="json",
        )
        assert response.status_code == 201, response.content
        conversion = Conversion.objects.for_merchant(tenant.merchant).get(order_id=order_id)
        conversion_process(merchant=tenant.merchant, conversion_id=conversion.pk)
    unattributed = tenant.api.post(
        "/api/v1/conversions", {"order_id": "2001", "amount": "10.00", "currency": "PLN"}, format="json"
    )
    assert unattributed.status_code == 201, unattributed.content
    rewards_release_due()
    coupons = list(
        Reward.objects.for_merchant(tenant.merchant)
        .filter(kind=Kind.AMOUNT_COUPON, status=Reward.Status.ISSUED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    assert len(coupons) == 3, coupons
    item = CatalogItem.objects.for_merchant(tenant.merchant).create(
        program=program, name="5 PLN voucher", points=10, kind=Kind.AMOUNT_COUPON, value=5
    )
    endpoints = []
    for n in range(3):
        response = tenant.api.post(
            "/api/v1/webhook-endpoints", {"url": f"https://hooks{n}.example.org/in"}, format="json"
        )
        assert response.status_code == 201, response.content
        endpoints.append(response.json()["id"])
    hooks = []
    for n in range(2):
        response = tenant.api.post(
            "/api/v1/hooks",
            {"target_url": f"https://hooks.zapier.example/{n}", "event": "reward.issued"},
            format="json",
        )
        assert response.status_code == 201, response.content
        hooks.append(response.json()["id"])
    return {
        "program": program.slug,
        "code": code.code,
        "referrer_external_id": referrer.external_id,
        "referrer_id": referrer.pk,
        "orders": ["1001", "1002", "1003", "2001"],
        "coupons": coupons,
        "item": item.pk,
        "endpoints": endpoints,
        "hooks": hooks,
    }


def _valid_calls(seed: dict) -> dict:
    """One hand-made call per operation (by operationId) that must succeed. Calls that use something up take
    what the others do not read (the last coupon, the last endpoint)."""
    ref = {"ref": seed["referrer_external_id"]}
    return {
        "me": {},
        "programs_list": {},
        "programs_retrieve": {"path_parameters": {"slug": seed["program"]}},
        "participants_list": {"query": {"program": seed["program"]}},
        "participants_upsert": {
            "body": {"program": seed["program"], "external_id": "c-43", "email": "bea@example.org", "name": "Bea"}
        },
        "participants_retrieve": {"path_parameters": ref},
        "participants_points": {"path_parameters": ref},
        "participants_points_redeem": {"path_parameters": ref, "body": {"item": str(seed["item"])}},
        "codes_check": {"path_parameters": {"code": seed["code"]}},
        "referrals_list": {},
        "referrals_create": {"body": {"code": seed["code"], "customer": {"email": "eve@example.org"}}},
        "conversions_list": {},
        "conversions_create": {
            "body": {
                "order_id": "3001",
                "amount": "20.00",
                "currency": "PLN",
                "code": seed["code"],
                "customer": {"email": "fay@example.org"},
            }
        },
        "conversions_retrieve": {"path_parameters": {"order_id": "1001"}},
        "refunds_list": {"path_parameters": {"order_id": "1001"}},
        "refunds_create": {"path_parameters": {"order_id": "1001"}, "body": {"amount": "1.00", "refund_id": "r-1"}},
        "rewards_list": {"query": {"participant": seed["referrer_external_id"]}},
        "rewards_retrieve": {"path_parameters": {"reward_id": seed["coupons"][0]}},
        "rewards_redeem": {"path_parameters": {"reward_id": seed["coupons"][-1]}},
        "stats_retrieve": {"query": {"program": seed["program"]}},
        "webhook_endpoints_list": {},
        "webhook_endpoints_create": {"body": {"url": "https://hooks.example.org/new"}},
        "webhook_endpoints_retrieve": {"path_parameters": {"endpoint_id": seed["endpoints"][0]}},
        "webhook_endpoints_delete": {"path_parameters": {"endpoint_id": seed["endpoints"][-1]}},
        "hooks_subscribe": {"body": {"target_url": "https://hooks.zapier.example/new", "event": "reward.issued"}},
        "hooks_unsubscribe": {"path_parameters": {"hook_id": seed["hooks"][-1]}},
        "hooks_sample": {"query": {"event": "reward.issued"}},
    }


def _real_values(seed: dict) -> tuple[dict, dict, dict]:
    """Seeded values generated calls draw from: per path parameter, per query parameter, per body field."""
    path = {
        "slug": [seed["program"]],
        "ref": [seed["referrer_external_id"], str(seed["referrer_id"])],
        "code": [seed["code"], seed["code"].lower()],
        "order_id": seed["orders"],
        "reward_id": seed["coupons"],
        "endpoint_id": seed["endpoints"],
        "hook_id": seed["hooks"],
    }
    query = {"program": [seed["program"]], "participant": [seed["referrer_external_id"]]}
    body = {"program": [seed["program"]], "code": [seed["code"]], "currency": ["PLN"], "item": [str(seed["item"])]}
    return path, query, body


def _with_real_values(operation, strategy, seed):
    """Generated cases where some path/query/body values are replaced by seeded ones (each independently)."""
    path_values, query_values, body_values = _real_values(seed)

    declared = {p["name"] for p in operation.definition.raw.get("parameters", []) if p["in"] == "query"}

    @st.composite
    def cases(draw):
        case = draw(strategy)
        for name in list(case.path_parameters or {}):
            if name in path_values and draw(st.integers(0, 3)):
                case.path_parameters[name] = draw(st.sampled_from(path_values[name]))
        for name in sorted(declared & set(query_values)):
            if draw(st.booleans()):
                case.query = {**(case.query or {}), name: draw(st.sampled_from(query_values[name]))}
        if isinstance(case.body, dict):
            for name in sorted(set(case.body) & set(body_values)):
                if draw(st.integers(0, 3)):
                    case.body[name] = draw(st.sampled_from(body_values[name]))
        return case

    return cases()


def _generated_calls(recorder: Recorder, operation, seed: dict) -> None:
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        strategy = operation.as_strategy(generation_mode=mode)
        if mode is GenerationMode.POSITIVE:
            strategy = _with_real_values(operation, strategy, seed)

        @given(case=strategy)
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,  # the same inputs every run: CI stays reproducible
        )
        def check(case):
            recorder.call(case)

        check()


def _error_calls() -> dict:
    """Errors of one operation that generated input does not reliably reach: operationId -> calls."""
    return {
        "stats_retrieve": [{"query": {"program": "no-such-program"}}],  # 404
    }


def _special_calls(recorder: Recorder, operations: dict, valid: dict, tenant) -> None:
    """The errors every operation of a kind can answer, each provoked on purpose."""
    from django.db import connection, transaction

    from referral_saas.idempotency import _lock_id

    for operation in operations.values():
        values = valid[_operation_id(operation)]
        post = operation.method.upper() == "POST"
        # 401: no key, and a key that does not exist.
        recorder.call(operation.Case(**values), headers={})
        recorder.call(operation.Case(**values), headers={"Authorization": "Bearer rk_live_" + "x" * 32})
        # 404: an id of nothing, and a cursor that was never handed out.
        for name in values.get("path_parameters", {}):
            recorder.call(operation.Case(**{**values, "path_parameters": {**values["path_parameters"], name: "0"}}))
        if any(p["name"] == "cursor" for p in operation.definition.raw.get("parameters", [])):
            recorder.call(operation.Case(**{**values, "query": {**values.get("query", {}), "cursor": "bm9wZQ"}}))
        if not post:
            continue
        path = {"path_parameters": values.get("path_parameters", {})}
        json_type = {"Content-Type": "application/json"}
        # 400: a body that is not JSON; 415: a body that is not declared JSON; 413: a body over the limit.
        recorder.call(operation.Case(**path), headers={**recorder.auth, **json_type}, data=b'{"order_id": ')
        recorder.call(operation.Case(**path), headers={**recorder.auth, "Content-Type": "text/plain"}, data=b"{}")
        oversized = json.dumps({"note": "x" * 70_000}).encode()
        recorder.call(operation.Case(**path), headers={**recorder.auth, **json_type}, data=oversized)
        # 422: an Idempotency-Key already used for another request (the valid conversions_create call).
        reused = {**recorder.auth, **json_type, "Idempotency-Key": REUSED_KEY}
        recorder.call(operation.Case(**path), headers=reused, data=b"{}")
        # 409: an Idempotency-Key whose first request is still running (this connection holds its lock).
        busy = {**recorder.auth, **json_type, "Idempotency-Key": "still-running"}
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_id(tenant.merchant.pk, True, "still-running")])
            recorder.call(operation.Case(**path), headers=busy, data=b"{}")
    # 429: a key over its rate limit, on every operation.
    _key, raw = make_api_key(tenant.merchant, name="Rate limited")
    limited = {"Authorization": f"Bearer {raw}"}
    with override_settings(API_RATE_LIMIT_PER_MINUTE=1):
        first = next(iter(operations.values()))
        recorder.call(first.Case(**valid[_operation_id(first)]), headers=limited)  # the minute's one request
        for operation in operations.values():
            recorder.call(operation.Case(**valid[_operation_id(operation)]), headers=limited)


REUSED_KEY = "order-3001"


@pytest.fixture(scope="module")
def run(django_db_setup, django_db_blocker, live_server) -> Run:
    """Seeds a merchant, drives every operation of the schema, and records what each answered."""
    from urllib.parse import urlsplit

    from django.conf import settings

    from tests.conftest import _make_tenant

    host = urlsplit(live_server.url).hostname  # the live server's own test fixture allows it per test only
    with (
        django_db_blocker.unblock(),
        override_settings(SITE_URL=live_server.url, ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, host]),
    ):
        try:
            tenant = _make_tenant("Alpha Shop")
            seed = _seed(tenant)
            schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json")
            operations = {op.label: op for op in (result.ok() for result in schema.get_all_operations())}
            by_id = {_operation_id(op): op for op in operations.values()}
            recorder = Recorder(operations, auth={"Authorization": f"Bearer {tenant.raw_key}"})
            valid = _valid_calls(seed)
            missing = sorted(set(by_id) - set(valid))
            assert not missing, f"add a valid call (and the data it needs) for {missing} to _valid_calls"
            for operation_id, values in valid.items():
                headers = (
                    {**recorder.auth, "Idempotency-Key": REUSED_KEY} if operation_id == "conversions_create" else None
                )
                response = recorder.call(by_id[operation_id].Case(**values), headers=headers)
                assert response.status_code < 300, (operation_id, response.status_code, response.text)
            for operation in operations.values():
                _generated_calls(recorder, operation, seed)
            for operation_id, calls in _error_calls().items():
                for values in calls:
                    recorder.call(by_id[operation_id].Case(**values))
            _special_calls(recorder, operations, {op_id: valid[op_id] for op_id in by_id}, tenant)
            yield Run(operations=operations, seen=recorder.seen)
        finally:
            call_command("flush", verbosity=0, interactive=False, reset_sequences=False)


def test_every_operation_of_the_schema_answered_a_2xx(run):
    """Every operation was reached with data it accepts, not only refused: each answered at least one 2xx."""
    assert set(run.seen) == set(run.operations)  # every operation of the schema was called
    never = {label: dict(seen) for label, seen in run.seen.items() if not any(200 <= s < 300 for s in seen)}
    assert never == {}, "these operations never succeeded (seed what they need in _seed/_valid_calls)"


def test_every_documented_error_status_was_answered(run):
    """No phantom statuses: each error an operation documents was seen in the run (generated, or provoked on
    purpose in _special_calls/_error_calls), unless it needs a setup listed in NEEDS_SPECIAL_SETUP. Statuses
    answered but not documented fail status_code_conformance during the run itself."""
    phantom = {}
    for label, operation in run.operations.items():
        documented = {status for status in operation.definition.raw["responses"] if status[0] in "45"}
        seen = {str(status) for status in run.seen[label]}
        allowed = {status for method, status in NEEDS_SPECIAL_SETUP if method == operation.method.upper()}
        unexplained = documented - seen - allowed
        if unexplained:
            phantom[label] = sorted(unexplained)
    assert phantom == {}, "documented but never answered: remove them from the schema, or provoke them here"
