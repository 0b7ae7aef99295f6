"""Every count and money sum on the dashboards links to the admin list behind it, and that list holds exactly what
the number counts: same program, period, live or test mode and A/B variant. The tests read the numbers from the
rendered pages, follow each link and count the rows (or add up their amounts)."""

from __future__ import annotations

import dataclasses
import datetime
import html
import re
import zoneinfo
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db.models import F, Sum
from django.urls import reverse

from analytics.selectors.periods import merchant_today
from analytics.services import rollup_incremental
from rewards.models import Reward
from tests.analytics.helpers import World
from tests.factories import ProgramFactory
from tracking.models import Conversion

pytestmark = pytest.mark.django_db

# A ratio in a table (cost per acquisition) links to what it is made of, with a title saying so: not matched here.
CELL_LINK = re.compile(r'<td><a href="([^"]+)">([^<]+)</a></td>')
CARD = re.compile(r'<article class="kpi-card" data-kpi="(\w+)">(.*?)</article>', re.S)
CARD_VALUE = re.compile(r'<p class="kpi-value">(.*?)</p>', re.S)
CARD_LINKED = re.compile(r'<a href="([^"]+)"[^>]*>([^<]+)</a>')
CARD_HINT = re.compile(r'<p class="kpi-hint">([^<]*)</p>')
SHOWN = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
FRAUD_LINK = re.compile(r"<strong>(\d+)</strong> referrals? waits? for your fraud review\. <a href=\"([^\"]+)\">")
NUMBER = re.compile(r"^(-?[\d,]+(?:\.\d+)?)(?: ([A-Z]{3}))?$")
# A card shows its list's count or sum (as its value, or in its line below: "33 orders from 45 clicks"), or the
# list's average; a ratio shown with its two parts ("10 participants / 21 customers") must also be their quotient.
# The cards below are made of lists other cards link to, or of figures no list adds up: how each is checked.
CARDS_MADE_OF_OTHER_LISTS = {
    # (referral revenue - rewards cost) / rewards cost, from those two cards' lists (its own is the orders).
    "roi": lambda own, cards, hint: (
        (cards["referral_revenue"].total - cards["rewards_cost"].total) / cards["rewards_cost"].total
    ),
    # Rewards cost / referred new customers.
    "cpa": lambda own, cards, hint: own.total / cards["referred_customers"].count,
    # Clicks (its list) per participant who shared (the number in its line).
    "click_through": lambda own, cards, hint: Decimal(own.count) / hint[0],
    # Averages over the referred new customers (their later orders, their click-to-order times): no list adds
    # them up, so the list must be exactly those customers.
    "ltv": None,
    "time_to_purchase": None,
}


@pytest.fixture
def world(merchant):
    world = World(merchant, seed=17, start=datetime.datetime.now(zoneinfo.ZoneInfo("UTC")) - datetime.timedelta(days=6))
    world.people(10)
    world.people(5, livemode=False)
    world.events(300)
    for _ in range(8):
        world.order(world.when(), livemode=False)
    # What referral_reject guarantees: a rejected referral has no attributed order left.
    Conversion.all_merchants.filter(merchant=merchant, referral__status="rejected", status="attributed").update(
        status="rejected", rejection_reason="fraud"
    )
    for conversion in world.conversions[:5]:
        world.refund(conversion, (conversion.amount / 4).quantize(Decimal("0.01")))
    world.assess()
    # A budget and a goal: their cards show numbers (and link to lists) too.
    type(world.ab).all_merchants.filter(pk=world.ab.pk).update(budget=Decimal("500"), goal_customers=40)
    rollup_incremental()
    return world


def _number(text: str):
    match = NUMBER.match(html.unescape(text).strip())
    assert match, text
    digits = match.group(1).replace(",", "")
    return (Decimal(digits), True) if match.group(2) else (int(digits), False)


@dataclasses.dataclass
class Behind:
    """What a list holds: its rows, and the sum of their amounts (orders net of refunds, rewards' values)."""

    count: int
    total: Decimal | None


def _list_behind(client, url: str) -> Behind:
    response = client.get(html.unescape(url))
    assert response.status_code == 200, url  # an unknown lookup would redirect to ?e=1
    changelist = response.context["cl"]
    rows = changelist.queryset
    total = None
    if changelist.model is Conversion:
        total = rows.aggregate(total=Sum(F("amount") - F("refunded_amount")))["total"] or Decimal("0")
    elif changelist.model is Reward:
        total = rows.aggregate(total=Sum("value"))["total"] or Decimal("0")
    return Behind(changelist.result_count, total)


def _shown(text: str) -> tuple[Decimal, int, str]:
    """A card's number: its value, decimals shown, and kind (count, money, percent, or another number)."""
    text = html.unescape(text).strip()
    number = SHOWN.search(text).group(0).replace(",", "")
    decimals = len(number.split(".")[1]) if "." in number else 0
    if text.endswith("%"):
        kind = "percent"
    elif re.fullmatch(r"-?[\d,.]+ [A-Z]{3}", text):
        kind = "money"
    elif re.fullmatch(r"-?[\d,]+", text):
        kind = "count"
    else:
        kind = "number"  # 3.7 clicks per sharer, "about 2.7 days"
    return Decimal(number), decimals, kind


def _rounds_to(exact, shown: Decimal, decimals: int, kind: str) -> bool:
    exact = Decimal(exact) * (100 if kind == "percent" else 1)
    return exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP) == shown


def _card_mismatch(key: str, text: str, hint: str, own: Behind, cards: dict[str, Behind]) -> str | None:
    """Why the card's number is not what its list holds, or None."""
    value, decimals, kind = _shown(text)
    parts = [Decimal(n.replace(",", "")) for n in SHOWN.findall(html.unescape(hint))]
    if kind in ("count", "money"):
        if value in (own.count, own.total):
            return None
        if own.total is not None and own.count and _rounds_to(own.total / own.count, value, decimals, kind):
            return None  # an average over the list
    if own.count in parts or (own.total is not None and own.total in parts):
        if len(parts) < 2 or kind == "money" or _rounds_to(parts[0] / parts[1], value, decimals, kind):
            return None
        return f"{text} is not {parts[0]} / {parts[1]}"
    if key in CARDS_MADE_OF_OTHER_LISTS:
        made_of = CARDS_MADE_OF_OTHER_LISTS[key]
        if made_of is None:
            customers = cards["referred_customers"]
            return (
                None if own.count == customers.count else f"lists {own.count} rows, not the {customers.count} customers"
            )
        return None if _rounds_to(made_of(own, cards, parts), value, decimals, kind) else f"{text} is not its lists'"
    return f"{text} (and its line {hint!r}) shows neither its list's {own.count} rows nor their sum {own.total}"


def _assert_cards_match_their_lists(client, page: str) -> list[str]:
    """Every KPI card on the page, as rendered: a number links to its list, and the list holds that number.
    Returns the keys of the cards checked (cards without data show a dash and no link)."""
    found = {}
    for key, body in CARD.findall(page):
        value = CARD_VALUE.search(body).group(1)
        hint = " ".join(CARD_HINT.findall(body))
        link = CARD_LINKED.fullmatch(value)
        if link is None:
            plain = re.sub(r"<[^>]+>", "", value)
            assert not SHOWN.search(plain), f"card {key} shows {plain} without the list behind it"
            continue
        url, linked = link.groups()
        found[key] = (linked, hint, _list_behind(client, url))
    behind = {key: own for key, (_text, _hint, own) in found.items()}
    mismatches = {key: _card_mismatch(key, text, hint, own, behind) for key, (text, hint, own) in found.items()}
    assert {key: why for key, why in mismatches.items() if why} == {}
    return sorted(found)


def _behind(client, url: str, *, money: bool):
    """What the list at `url` holds: its row count, or the sum of its amounts."""
    response = client.get(html.unescape(url))
    assert response.status_code == 200, url  # an unknown lookup would redirect to ?e=1
    changelist = response.context["cl"]
    rows = changelist.queryset
    if changelist.model is Conversion:
        return (
            rows.aggregate(total=Sum(F("amount") - F("refunded_amount")))["total"] or Decimal("0")
            if money
            else (changelist.result_count)
        )
    if changelist.model is Reward and money:
        return rows.aggregate(total=Sum("value"))["total"] or Decimal("0")
    assert not money, url
    return changelist.result_count


def _links_on(page: str) -> list[tuple[str, str]]:
    """(number as shown, link) of every linked table cell and fraud-queue count (the cards: see above)."""
    page = page.split('<div class="analytics"', 1)[1].split('id="gs-title"', 1)[0]  # not the admin's app list
    found = [(text, url) for url, text in CELL_LINK.findall(page)]
    found += [(count, url) for count, url in FRAUD_LINK.findall(page)]
    return found


def _assert_numbers_match_their_lists(client, page: str) -> int:
    checked, mismatches = 0, []
    for text, url in _links_on(page):
        shown, money = _number(text)
        behind = _behind(client, url, money=money)
        checked += 1
        if shown != behind:
            mismatches.append((text, behind, html.unescape(url)))
    assert mismatches == []
    return checked + len(_assert_cards_match_their_lists(client, page))


@pytest.mark.parametrize("view", ["live", "test", "variant B", "variant A in test mode"])
def test_every_number_on_the_program_page_is_the_list_it_links_to(tenant, world, view):
    today = merchant_today(tenant.merchant)
    params = {"from": (today - datetime.timedelta(days=9)).isoformat(), "to": today.isoformat()}
    if "test" in view:
        params["mode"] = "test"
    if "variant" in view:
        params["variant"] = world.variants[0 if view.startswith("variant A") else 1].pk
    url = reverse("admin:analytics_program_dashboard", args=[world.ab.pk])

    page = tenant.admin.get(url, params).content.decode()

    checked = _assert_numbers_match_their_lists(tenant.admin, page)
    assert checked > 60  # cards, the day-by-day table, funnel, channels, before/after, A/B, top referrers


@pytest.mark.parametrize("page", ["home", "program"])
def test_every_card_shows_a_number_its_list_holds(tenant, world, page):
    """The cards come from the page as rendered: a new card is checked without being named here."""
    url = "/admin/" if page == "home" else reverse("admin:analytics_program_dashboard", args=[world.ab.pk])
    rendered = tenant.admin.get(url).content.decode()

    checked = _assert_cards_match_their_lists(tenant.admin, rendered)

    assert checked == sorted(key for key, _body in CARD.findall(rendered))  # this world gives every card data
    assert len(checked) >= (6 if page == "home" else 13)


def test_the_links_carry_the_program_period_mode_and_variant(tenant, world):
    variant = world.variants[1]
    today = merchant_today(tenant.merchant)
    page = tenant.admin.get(
        reverse("admin:analytics_program_dashboard", args=[world.ab.pk]),
        {"from": (today - datetime.timedelta(days=9)).isoformat(), "to": today.isoformat(), "mode": "test",
         "variant": variant.pk},
    ).content.decode()  # fmt: skip
    funnel = dict(
        re.findall(r'<th scope="row">([^<]+)</th><td><a href="([^"]+)">', page.split('id="chart-funnel"')[1])[:4]
    )
    clicks, signups = html.unescape(funnel["Clicks"]), html.unescape(funnel["Sign-ups"])
    assert f"program__id__exact={world.ab.pk}" in clicks
    assert "livemode__exact=0" in clicks
    assert f"code__variant__id__exact={variant.pk}" in clicks
    assert "occurred_at__gte=" in clicks
    assert "status__in=clicked%2Csigned_up%2Cconverted" in signups  # rejected referrals are not sign-ups
    assert f"variant__id__exact={variant.pk}" in signups
    rewarded = html.unescape(funnel["Rewarded"])  # the purchases, one row each, not their rewards
    assert "/tracking/conversion/" in rewarded
    assert "status__exact=attributed" in rewarded
    assert "is_new_customer__exact=1" in rewarded
    assert "rewarded=yes" in rewarded
    assert f"referral__variant__id__exact={variant.pk}" in rewarded


@pytest.mark.parametrize("mode", ["live", "test"])
def test_every_number_on_the_home_page_is_the_list_it_links_to(tenant, world, mode):
    page = tenant.admin.get("/admin/", {"mode": mode} if mode == "test" else {}).content.decode()

    checked = _assert_numbers_match_their_lists(tenant.admin, page)
    assert checked >= 13  # three cards, five numbers per program, the fraud queue


def test_the_home_pages_program_links_keep_the_period_and_the_mode(tenant, world):
    page = tenant.admin.get("/admin/", {"from": "2026-01-01", "to": "2026-01-31", "mode": "test"}).content.decode()
    expected = reverse("admin:analytics_program_dashboard", args=[world.ab.pk]) + "?from=2026-01-01&to=2026-01-31"
    assert html.escape(expected + "&mode=test") in page


def test_the_program_switch_keeps_the_period_and_the_mode(tenant, world):
    url = reverse("admin:analytics_program_dashboard", args=[world.ab.pk])
    page = tenant.admin.get(url, {"from": "2026-01-01", "to": "2026-01-31", "mode": "test"}).content.decode()
    other = reverse("admin:analytics_program_dashboard", args=[world.plain.pk])
    assert html.escape(f"{other}?from=2026-01-01&to=2026-01-31&mode=test") in page


def test_the_fraud_queue_count_is_this_programs_and_this_modes(tenant, world):
    from tests.analytics.helpers import fraud_model

    model = fraud_model()
    waiting = model.all_merchants.filter(merchant=tenant.merchant, decision="review")
    assert waiting.filter(program=world.ab, livemode=True).exists(), "the seed made assessments to review"
    page = tenant.admin.get(reverse("admin:analytics_program_dashboard", args=[world.ab.pk])).content.decode()
    count, url = FRAUD_LINK.search(page).groups()
    assert int(count) == waiting.filter(program=world.ab, livemode=True).count()
    assert _behind(tenant.admin, url, money=False) == int(count)


def test_lists_take_ids_of_related_rows_but_no_other_field_of_them(tenant, world):
    orders = reverse("admin:tracking_conversion_changelist")
    variant = world.variants[0]

    by_variant = tenant.admin.get(orders, {"referral__variant__id__exact": variant.pk})
    probing = tenant.admin.get(orders, {"referral__referee_email__startswith": "f"})
    through_a_name = tenant.admin.get(orders, {"referral__variant__name__exact": "A"})

    assert by_variant.status_code == 200
    assert set(by_variant.context["cl"].queryset.values_list("referral__variant", flat=True)) == {variant.pk}
    assert probing.status_code == 400
    assert through_a_name.status_code == 400


def test_the_variant_filter_lists_only_the_merchants_own_variants(tenant, other_tenant, world):
    for name in ("rewards_reward", "programs_shareevent"):
        url = reverse(f"admin:{name}_changelist")
        own = tenant.admin.get(url).content.decode()
        other = other_tenant.admin.get(url, {"variant": world.variants[0].pk})

        assert html.escape(str(world.variants[0])) in own
        assert other.status_code == 200
        assert html.escape(str(world.variants[0])) not in other.content.decode()
        assert other.context["cl"].result_count == 0


@pytest.mark.parametrize("mode", ["live", "test"])
def test_the_participants_export_link_lists_the_programs_people_in_the_mode(tenant, other_tenant, world, mode):
    from programs.models import Participant
    from tests.factories import join

    join(ProgramFactory(merchant=other_tenant.merchant), email="elsewhere@people.example")
    params = {"mode": "test"} if mode == "test" else {}
    page = tenant.admin.get(reverse("admin:analytics_program_dashboard", args=[world.ab.pk]), params)
    link = re.search(r'<a href="([^"]+)">Participants of this program</a>', page.content.decode()).group(1)

    listed = tenant.admin.get(html.unescape(link)).context["cl"].queryset
    expected = Participant.all_merchants.filter(
        merchant=tenant.merchant, codes__program=world.ab, livemode=(mode == "live")
    )
    assert sorted(listed.values_list("pk", flat=True)) == sorted(expected.values_list("pk", flat=True))
    assert expected.exists()
    assert listed.count() < Participant.all_merchants.filter(merchant=tenant.merchant).count()


def test_the_participants_list_refuses_a_program_that_is_not_an_id(tenant, world):
    response = tenant.admin.get("/admin/programs/participant/", {"program": "ab"})
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")  # Django's "bad filter" page, not a 500 or an unfiltered list
