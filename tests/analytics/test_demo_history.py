"""`make run`'s Demo Shop (manage.py seed_demo): 90 days of history that the dashboards show at once, with numbers
that agree with the orders, rewards and reviews behind them; a second run adds nothing."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import F, Sum
from django.test import override_settings
from django.urls import reverse

from analytics.models import DailyStats, ShopDailyStats
from analytics.selectors.dashboard import fraud_review_count, program_report
from analytics.selectors.periods import Period, merchant_today
from analytics.selectors.sums import daily_totals, rewards_cost
from fraud.models import FraudAssessment
from programs.models import Participant, Program, ShareEvent
from referral_saas.tenancy.models import Membership, Merchant
from rewards.models import Notification, Reward
from tests.conftest import _make_tenant, staff_client
from tracking.models import Click, Conversion, Referral, Refund

# Each test in a transaction of its own, on the history written once for the module (committed: seed_demo commits
# it) and flushed afterwards.
pytestmark = pytest.mark.django_db
ROWS = (Participant, Click, Referral, Conversion, Refund, Reward, FraudAssessment, ShareEvent, Notification)


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock(), override_settings(BASE_DIR=tmp_path_factory.mktemp("demo")):
        try:
            other = _make_tenant("Other Shop")
            call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115 - closed with the process
            merchant = Merchant.objects.get(slug="demo-shop")
            yield merchant, Program.objects.for_merchant(merchant).get(slug="friends"), other.merchant
        finally:
            call_command("flush", verbosity=0, interactive=False, reset_sequences=False)


@pytest.fixture
def shop(demo):
    return demo[:2]


def _whole(merchant) -> Period:
    today = merchant_today(merchant)
    return Period(today - datetime.timedelta(days=89), today)


def test_the_dashboard_has_ninety_days_of_clicks_orders_refunds_and_rewards(shop):
    merchant, program = shop
    today = merchant_today(merchant)
    days = DailyStats.objects.for_merchant(merchant).filter(program=program, clicks__gt=0).values_list("day", flat=True)
    assert min(days) <= today - datetime.timedelta(days=80)
    assert max(days) >= today - datetime.timedelta(days=1)
    totals = daily_totals(merchant=merchant, livemode=True, programs=[program], period=_whole(merchant))
    assert totals["clicks"] > 2_000
    assert totals["participants_joined"] >= 150
    assert totals["attributed_orders"] > 150
    assert totals["referred_revenue"] > Decimal(5_000)
    assert totals["signups"] > 50
    assert totals["shares"] > 100
    # Refunds, partial and full, of referred and other orders.
    refunded = Conversion.objects.for_merchant(merchant).filter(refunded_amount__gt=0)
    assert refunded.filter(refunded_amount__lt=F("amount")).exists()
    assert refunded.filter(refunded_amount=F("amount")).exists()
    # Rewards in every state a running program has.
    statuses = set(Reward.objects.for_merchant(merchant).values_list("status", flat=True))
    assert {"pending", "issued", "redeemed", "voided", "clawed_back"} <= statuses
    # One order in the review queue, shown on the dashboard.
    assert fraud_review_count(merchant=merchant, program=program) == 1
    # Referred customers who came back (retention) and shop orders before the program (the before/after baseline).
    assert Conversion.objects.for_merchant(merchant).filter(referral__isnull=False, is_new_customer=False).exists()
    before = ShopDailyStats.objects.for_merchant(merchant).filter(day__lt=program.starts_on).aggregate(n=Sum("orders"))
    assert before["n"] > 50


def test_the_ab_test_has_two_arms_each_with_people_customers_and_cost(shop):
    merchant, program = shop
    report = program_report(merchant=merchant, program=program, period=_whole(merchant))
    assert [row.name for row in report.ab] == ["A", "B"]
    for row in report.ab:
        # Referrers are split by a hash of their id (about half each), and a few keen ones bring most clicks.
        assert row.participants > 20, row
        assert row.clicks > 50, row
        assert row.new_customers > 3, row
        assert row.cost > 0, row
    # B pays its own rule: a fixed $15 after a 14-day hold, so its latest rewards are still pending.
    b_rewards = Reward.objects.for_merchant(merchant).filter(referral__variant__name="B", side="referrer")
    assert set(b_rewards.values_list("value", flat=True)) <= {Decimal(15), Decimal(0)}
    assert b_rewards.filter(status="pending").exists()
    assert report.before_after
    assert report.before_after[0]["before"] not in ("0", "—")


def test_the_dashboard_numbers_agree_with_the_orders_and_rewards_behind_them(shop):
    merchant, program = shop
    totals = daily_totals(merchant=merchant, livemode=True, programs=[program], period=None, until=datetime.date.max)
    referred = Conversion.objects.for_merchant(merchant).filter(status="attributed", program=program)
    kept = referred.aggregate(v=Sum(F("program_amount") - F("program_refunded_amount")))["v"]
    assert totals["referred_revenue"] == kept
    assert totals["attributed_orders"] == referred.count()
    assert totals["clicks"] == Click.objects.for_merchant(merchant).filter(is_bot=False).count()
    money = Reward.objects.for_merchant(merchant).filter(unit="money")
    kept_money = money.exclude(status__in=("rejected", "voided", "clawed_back"))
    assert rewards_cost(totals) == kept_money.aggregate(v=Sum(F("value") - F("taken_back")))["v"]
    # Every timestamp is in the history, none in the future, and no email of the past is waiting to be sent.
    now = datetime.datetime.now(datetime.UTC)
    assert not Reward.objects.for_merchant(merchant).filter(created_at__gt=now).exists()
    assert not Referral.objects.for_merchant(merchant).filter(created_at__gt=now).exists()
    assert not Notification.objects.for_merchant(merchant).filter(sent_at__isnull=True).exists()


def test_the_admin_home_and_program_page_show_the_history_to_the_demo_owner(shop):
    merchant, program = shop
    owner = Membership.objects.for_merchant(merchant).get(role=Membership.Role.OWNER).user
    client = staff_client(owner, merchant)
    home = client.get("/admin/")
    assert home.status_code == 200
    assert 'data-empty="no_clicks"' not in home.content.decode()
    page = client.get(reverse("admin:analytics_program_dashboard", args=[program.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    report = program_report(merchant=merchant, program=program, period=page.context["report"].period)
    revenue = next(card for card in report.cards if card.key == "referral_revenue")
    assert revenue.value
    assert revenue.value in html
    assert report.fraud_review == 1


def test_a_second_seed_demo_adds_nothing(shop):
    merchant, _program = shop
    before = {model.__name__: model.objects.for_merchant(merchant).count() for model in ROWS}
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert {model.__name__: model.objects.for_merchant(merchant).count() for model in ROWS} == before
    assert Merchant.objects.filter(name="Demo Shop").count() == 1


def test_the_history_is_the_demo_shops_only(demo):
    merchant, _program, other = demo
    assert all(model.objects.for_merchant(other).count() == 0 for model in ROWS)
    assert Participant.objects.for_merchant(merchant).count() > 150
