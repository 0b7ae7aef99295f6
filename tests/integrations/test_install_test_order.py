"""The install page's "Send a test order": the loop run once in test mode through the shop's own doors (the join
service, the link's click path, the conversions service, the worker's pipeline), and its stages shown on the page."""

from __future__ import annotations

import html
from datetime import date

import pytest

from integrations import selectors
from integrations.services import test_order as services
from programs.models import Participant, Program
from referral_saas.tenancy.models import Membership
from referral_saas.webhooks.services.endpoints import endpoint_create
from rewards.models import Reward
from rewards.services import reward_release
from tests.conftest import staff_client
from tests.factories import MembershipFactory, UserFactory
from tests.rewards.helpers import process, rule
from tracking.models import Click, Conversion
from tracking.services import TEST_REFERRER_EXTERNAL_ID

pytestmark = pytest.mark.django_db

INSTALL = "/admin/integrations/connection/install/{}/"


def _send(tenant, program, **kwargs):
    return tenant.admin.post(INSTALL.format(program.pk) + "test-order/", **kwargs)


def _stages(run) -> dict[str, str]:
    return {stage.key: stage.state for stage in run.stages}


def test_a_test_order_runs_the_loop_in_test_mode_and_the_worker_rewards_the_test_referrer(
    tenant, program, click_stream
):
    rule(program, hold_days=0)
    conversion = services.test_order_send(merchant=tenant.merchant, program=program)
    assert conversion.livemode is False
    assert conversion.status == Conversion.Status.ATTRIBUTED
    referrer = conversion.referral.referrer
    assert (referrer.livemode, referrer.external_id, referrer.name) == (
        False,
        TEST_REFERRER_EXTERNAL_ID,
        "Test referrer",
    )
    assert referrer.email is None  # a test run emails nobody
    click = Click.objects.for_merchant(tenant.merchant).get(pk=conversion.click_id)  # the link's click, ingested
    assert (click.livemode, click.code_id) == (False, conversion.referral.code_id)

    run = selectors.test_order_run(merchant=tenant.merchant, program=program, order_id=conversion.order_id)
    assert _stages(run) == {
        "joined": "done", "clicked": "done", "attributed": "done", "fraud": "waiting", "reward": "waiting",
        "webhooks": "skipped",
    }  # fmt: skip
    assert not run.finished

    process(tenant, conversion.pk)  # what the worker does with the order
    run = selectors.test_order_run(merchant=tenant.merchant, program=program, order_id=conversion.order_id)
    assert _stages(run)["fraud"] == "done"
    reward = Reward.objects.for_merchant(tenant.merchant).get(conversion=conversion)
    assert (reward.livemode, reward.participant_id) == (False, referrer.pk)
    assert _stages(run)["reward"] == "waiting"  # no hold: released by the worker's next sweep
    assert reward_release(merchant_id=tenant.merchant.pk, reward_id=reward.pk) == Reward.Status.ISSUED
    run = selectors.test_order_run(merchant=tenant.merchant, program=program, order_id=conversion.order_id)
    assert _stages(run)["reward"] == "done"
    assert "Issued" in next(stage.detail for stage in run.stages if stage.key == "reward")
    assert run.finished


def test_the_test_referrer_is_reused_and_every_run_has_a_new_customer(tenant, program, click_stream):
    first = services.test_order_send(merchant=tenant.merchant, program=program)
    second = services.test_order_send(merchant=tenant.merchant, program=program)
    assert first.order_id != second.order_id
    assert first.customer_external_id != second.customer_external_id
    assert second.status == Conversion.Status.ATTRIBUTED
    assert first.referral.referrer_id == second.referral.referrer_id
    testers = Participant.objects.for_merchant(tenant.merchant).filter(external_id=TEST_REFERRER_EXTERNAL_ID)
    assert testers.count() == 1


def test_a_held_reward_shows_its_release_date(tenant, program, click_stream):
    rule(program, hold_days=30)
    conversion = services.test_order_send(merchant=tenant.merchant, program=program)
    process(tenant, conversion.pk)
    run = selectors.test_order_run(merchant=tenant.merchant, program=program, order_id=conversion.order_id)
    reward = next(stage for stage in run.stages if stage.key == "reward")
    assert (reward.state, reward.state_label) == ("held", "On hold")
    assert "held until" in reward.detail
    assert run.finished  # nothing left for the worker until the hold ends


def test_a_program_without_rules_says_so_at_the_reward_stage(tenant, program, click_stream):
    conversion = services.test_order_send(merchant=tenant.merchant, program=program)
    process(tenant, conversion.pk)
    run = selectors.test_order_run(merchant=tenant.merchant, program=program, order_id=conversion.order_id)
    reward = next(stage for stage in run.stages if stage.key == "reward")
    assert reward.state == "skipped"
    assert "no active reward rule" in reward.detail


def test_a_test_mode_webhook_endpoint_gets_the_run_and_a_live_one_does_not(tenant, program, click_stream, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    endpoint_create(merchant=tenant.merchant, livemode=False, url="https://hooks.example/test")
    live, _secret = endpoint_create(merchant=tenant.merchant, livemode=True, url="https://hooks.example/live")
    rule(program, hold_days=0)
    conversion = services.test_order_send(merchant=tenant.merchant, program=program)
    process(tenant, conversion.pk)
    run = selectors.test_order_run(merchant=tenant.merchant, program=program, order_id=conversion.order_id)
    webhooks = next(stage for stage in run.stages if stage.key == "webhooks")
    assert webhooks.state == "waiting"  # queued for the test-mode endpoint, not delivered in this test
    assert "0 of" in webhooks.detail
    assert not live.deliveries.exists()


def test_a_program_that_is_not_live_refuses_a_test_order(tenant, program, click_stream):
    Program.objects.for_merchant(tenant.merchant).filter(pk=program.pk).update(status=Program.Status.PAUSED)
    program.refresh_from_db()
    response = _send(tenant, program, follow=True)
    assert "The program is not live" in html.unescape(response.content.decode())
    assert not Conversion.objects.for_merchant(tenant.merchant).exists()


def test_the_button_sends_a_test_order_and_the_page_shows_its_stages(tenant, program, click_stream):
    page = html.unescape(tenant.admin.get(INSTALL.format(program.pk)).content.decode())
    assert 'data-testid="send-test-order"' in page
    assert "csrfmiddlewaretoken" in page
    response = _send(tenant, program)
    assert response.status_code == 302
    conversion = Conversion.objects.for_merchant(tenant.merchant).get()
    assert response["Location"].endswith(f"?test_order={conversion.order_id}#test-order")
    page = html.unescape(tenant.admin.get(response["Location"]).content.decode())
    assert f"Test order {conversion.order_id}" in page
    assert 'Test referrer joined</strong>: <span class="state">Done</span>' in page  # the state in words
    assert 'Fraud check</strong>: <span class="state">Waiting</span>' in page

    status = tenant.admin.get(INSTALL.format(program.pk) + f"test-order/{conversion.order_id}/")
    assert status.status_code == 200
    data = status.json()
    assert data["order_id"] == conversion.order_id
    assert data["finished"] is False
    assert [s["key"] for s in data["stages"]] == ["joined", "clicked", "attributed", "fraud", "reward", "webhooks"]
    assert data["stages"][0]["state_label"] == "Done"


def test_the_test_order_needs_a_post_with_its_csrf_token(tenant, program, click_stream):
    client = staff_client(tenant.owner, tenant.merchant)
    client.handler.enforce_csrf_checks = True
    assert _send(type("T", (), {"admin": client}), program).status_code == 403
    assert tenant.admin.get(INSTALL.format(program.pk) + "test-order/").status_code == 302  # back to the page
    assert not Conversion.objects.for_merchant(tenant.merchant).exists()


def test_an_analyst_sees_no_button_and_cannot_send_a_test_order(tenant, program, click_stream):
    analyst = UserFactory(email="analyst@alpha.example")
    MembershipFactory(merchant=tenant.merchant, user=analyst, role=Membership.Role.ANALYST)
    client = staff_client(analyst, tenant.merchant)
    page = client.get(INSTALL.format(program.pk)).content.decode()
    assert 'data-testid="send-test-order"' not in page
    assert client.post(INSTALL.format(program.pk) + "test-order/").status_code == 403
    assert not Conversion.objects.for_merchant(tenant.merchant).exists()


def test_another_merchant_cannot_run_or_read_a_test_order_of_this_program(tenant, other_tenant, program, click_stream):
    assert _send(other_tenant, program).status_code == 404
    assert not Conversion.objects.for_merchant(other_tenant.merchant).exists()
    assert not Conversion.objects.for_merchant(tenant.merchant).exists()
    conversion = services.test_order_send(merchant=tenant.merchant, program=program)
    status = other_tenant.admin.get(INSTALL.format(program.pk) + f"test-order/{conversion.order_id}/")
    assert status.status_code == 404
    page = other_tenant.admin.get(INSTALL.format(program.pk) + f"?test_order={conversion.order_id}")
    assert page.status_code == 404


def test_an_order_that_is_not_a_test_order_has_no_run(tenant, program, referrer, click_stream):
    assert selectors.test_order_run(merchant=tenant.merchant, program=program, order_id="1001") is None
    assert tenant.admin.get(INSTALL.format(program.pk) + "test-order/1001/").status_code == 404


def test_test_orders_never_reach_the_live_figures(tenant, program, click_stream):
    from analytics.services.rollup import rollup_incremental

    rule(program, hold_days=0)
    conversion = services.test_order_send(merchant=tenant.merchant, program=program)
    process(tenant, conversion.pk)
    rollup_incremental()
    today = date.today().isoformat()
    query = f"/api/v1/stats?program={program.slug}&from={today}&to={today}"
    live = tenant.api.get(query).json()["totals"]
    assert (live["clicks"], live["conversions"], live["participants_joined"]) == (0, 0, 0)
    assert live["revenue"] in ("0.00", 0, "0")


def test_test_orders_tick_no_step_of_the_setup_checklist(tenant, program, click_stream):
    before = [step.done for step in selectors.setup_checklist(merchant=tenant.merchant, program=program)]
    rule(program, hold_days=0)
    conversion = services.test_order_send(merchant=tenant.merchant, program=program)
    process(tenant, conversion.pk)
    after = [step.done for step in selectors.setup_checklist(merchant=tenant.merchant, program=program)]
    assert after == before  # the loop works; the shop is not wired to it yet
    assert after.count(True) == 1  # the API key


def test_a_test_key_does_not_see_a_live_code_as_the_readme_says(tenant, program, referrer):
    from referral_saas.tenancy.models import ApiKey
    from tests.factories import make_api_key
    from tests.rewards.helpers import order as live_order

    _anna, code = referrer  # joined in live mode (as in the hosted portal)
    _key, raw = make_api_key(tenant.merchant, mode=ApiKey.Mode.TEST)
    tester = type(tenant.api)()
    tester.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert tester.get(f"/api/v1/codes/{code.code}").status_code == 404
    refused = tester.post(
        "/api/v1/conversions",
        {"order_id": "T-1", "amount": "50.00", "currency": "PLN", "code": code.code, "customer": {"external_id": "t"}},
        format="json",
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "unknown_code"
    assert live_order(tenant, code)["attributed"] is True  # the live key sees it
