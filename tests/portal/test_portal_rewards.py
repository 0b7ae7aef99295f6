"""The portal's rewards as a referrer sees them: each reward and its status, coupons to copy, points and their
history, the catalog (redeeming once per click, never another program's item), milestone progress, in Polish too,
and nothing of another shop."""

from __future__ import annotations

import datetime
import html
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone, translation
from django.utils.formats import date_format

from portal.services import portal_sso_url
from rewards.models import CatalogItem, CouponPool, Kind, LedgerEntry, Reward, RewardRule, Side
from rewards.selectors import ledger_balance
from rewards.services import reward_release
from tests.factories import ProgramFactory, join
from tests.rewards.helpers import order, process, rule
from tests.threads import run_together

pytestmark = pytest.mark.django_db

NOON = datetime.time(12, tzinfo=datetime.UTC)  # dates in the middle of a day: the same date in every time zone


def _base(program, lang: str = "en") -> str:
    return f"/{lang}/p/{program.merchant.slug}/{program.slug}/"


def _sign_in(client: Client, program, participant) -> Client:
    """The shop's signed link, as a shop sends its signed-in customer to the portal."""
    url = portal_sso_url(program=program, external_id=participant.external_id, email=participant.email or "")
    assert client.get("/" + url.split("/", 3)[3]).status_code == 302
    return client


def _page(client: Client, program, lang: str = "en") -> str:
    response = client.get(_base(program, lang))
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def _day(days: int) -> datetime.datetime:
    return datetime.datetime.combine(timezone.now().date() + datetime.timedelta(days=days), NOON)


def _long_date(value: datetime.datetime, lang: str = "en") -> str:
    with translation.override(lang):
        return date_format(timezone.localtime(value), "DATE_FORMAT")


def _reward(program, participant, rule_, *, status: str, **fields) -> Reward:
    values = {
        "program": program,
        "rule": rule_,
        "side": Side.REFERRER,
        "participant": participant,
        "kind": rule_.kind,
        "unit": rule_.unit,
        "value": rule_.value,
        "original_value": rule_.value,
        "currency": program.currency,
        "description": rule_.description,
        "status": status,
        "hold_until": _day(-1),
    }
    values.update(fields)
    return Reward.objects.for_merchant(program.merchant).create(**values)


def _points_rule(program) -> RewardRule:
    return rule(
        program, name="points", kind=Kind.POINTS, value_type=RewardRule.ValueType.FIXED, value=Decimal(50), hold_days=0
    )


def _give_points(program, participant, points: int, **fields) -> None:
    """A points reward released by the real service (approved, issued, credited to the ledger)."""
    points_rule = RewardRule.objects.for_merchant(program.merchant).filter(program=program, kind=Kind.POINTS).first()
    rule_ = points_rule or _points_rule(program)
    reward = _reward(program, participant, rule_, status="pending", value=points, original_value=points, **fields)
    assert reward_release(merchant_id=program.merchant_id, reward_id=reward.pk) == Reward.Status.ISSUED


def _item(program, **fields) -> CatalogItem:
    values = {"name": "20 PLN voucher", "points": 100, "kind": Kind.AMOUNT_COUPON, "value": Decimal("20.00")}
    values.update(fields)
    return CatalogItem.objects.for_merchant(program.merchant).create(program=program, **values)


def _token(page: str) -> str:
    return re.search(r'name="token" value="([^"]+)"', page).group(1)


def _redeem(client: Client, program, item, token: str, lang: str = "en"):
    return client.post(_base(program, lang) + "redeem/", {"item": item.pk, "token": token}, follow=True)


def _spent(program, participant) -> list[Decimal]:
    scope = LedgerEntry.objects.for_merchant(program.merchant).filter(participant=participant, kind="spent")
    return list(scope.values_list("amount", flat=True))


# --- rewards --------------------------------------------------------------------------------------------------------


def test_every_reward_status_is_said_in_plain_words(client, program, referrer):
    participant, _code = referrer
    coupon = rule(program, name="coupon", kind=Kind.PERCENT_COUPON, value_type="fixed", value=Decimal(15))
    credit = rule(program, name="credit", kind=Kind.STORE_CREDIT, value_type="fixed", value=Decimal("25.00"))
    pending = _reward(program, participant, coupon, status="pending", hold_until=_day(20))
    _reward(program, participant, credit, status="approved")
    redeemed = _reward(program, participant, coupon, status="redeemed", coupon_code="REF-USED", redeemed_at=_day(-2))
    # As the services end them: the staff's note and the code the page says in the customer's words.
    _reward(program, participant, credit, status="rejected", reason="Limit of 3 rewards per person reached.",
            reason_code="cap")  # fmt: skip
    _reward(program, participant, credit, status="voided", reason="Order refunded (r-1).", reason_code="refund")
    _reward(program, participant, coupon, status="clawed_back", reason="Order refunded (r-2).", reason_code="refund")

    page = _page(_sign_in(client, program, participant), program)

    assert "A 15% off coupon" in page
    assert "25.00 PLN in store credit" in page
    assert f"Released on {_long_date(pending.hold_until)}, once the order can no longer be returned." in page
    assert "Approved and on its way to you." in page
    assert f"Used on {_long_date(redeemed.redeemed_at)}." in page
    assert "REF-USED" not in page  # a used code is history, not something to copy
    assert "Not granted" in page
    assert "You reached the program's limit of rewards." in page
    assert "Cancelled" in page
    assert "The order was returned before the reward was used." in page
    assert "Taken back" in page
    assert "The order was returned, so the reward was taken back." in page
    assert "Limit of 3" not in page
    assert "r-1" not in page  # the staff's notes stay in the admin
    assert page.count('class="reward"') == 6


def test_an_issued_coupon_shows_its_code_a_copy_button_and_its_expiry(client, program, referrer):
    participant, _code = referrer
    coupon = rule(program, name="coupon", kind=Kind.AMOUNT_COUPON, value_type="fixed", value=Decimal("30.00"))
    fresh = _reward(program, participant, coupon, status="issued", coupon_code="REF-FRESH123", expires_at=_day(60))
    _reward(program, participant, coupon, status="issued", coupon_code="REF-OLD45678", expires_at=_day(-3))

    page = _page(_sign_in(client, program, participant), program)

    assert "A coupon worth 30.00 PLN" in page
    assert "Ready to use at the shop." in page
    field = f'id="reward-{fresh.pk}-code" class="coupon-code" type="text" value="REF-FRESH123" readonly'
    assert field in page
    assert f'data-copy="#reward-{fresh.pk}-code"' in page
    assert f"Valid until {_long_date(fresh.expires_at)}." in page
    assert "REF-OLD45678" in page
    assert f"Expired on {_long_date(_day(-3))}." in page
    assert page.count("data-copy=") == 2  # the referral link's and the fresh coupon's; not the expired one


def test_a_participant_without_rewards_is_told_when_they_come(client, program, referrer):
    page = _page(_sign_in(client, program, referrer[0]), program)
    assert "Your rewards appear here when your friends buy." in page
    assert 'id="points"' not in page  # the program gives no points and has no catalog
    assert 'id="milestones"' not in page


# --- points -------------------------------------------------------------------------------------------------------


def test_points_balance_and_history(client, program, referrer, monkeypatch):
    participant, _code = referrer
    _give_points(program, participant, 120)
    # Anna's three friends who bought are not the point here: the release counts them.
    monkeypatch.setattr("rewards.services.issuing.successful_referrals", lambda **kwargs: 3)
    _give_points(program, participant, 30, milestone=3)

    page = _page(_sign_in(client, program, participant), program)

    assert 'data-points="150"' in page
    assert "You have 150 points." in re.sub(r"</?strong>", "", page)
    history = page.split('data-testid="points-history"')[1].split("</table>")[0]
    assert "<caption>Points history</caption>" in history
    assert history.count("<tr>") == 3  # the header and two entries
    assert "+120" in history
    assert "+30" in history
    assert "Milestone reached: 3 friends" in history
    assert 'scope="col"' in history


def test_points_show_when_the_program_gives_points_even_before_any_are_earned(client, program, referrer):
    _points_rule(program)
    page = _page(_sign_in(client, program, referrer[0]), program)
    assert 'data-points="0"' in page
    assert "You have no points yet." in page


# --- the catalog ----------------------------------------------------------------------------------------------------


def test_redeeming_points_shows_the_new_coupon_and_takes_the_points(client, program, referrer):
    participant, _code = referrer
    _give_points(program, participant, 120)
    item = _item(program, coupon_valid_days=30)
    page = _page(_sign_in(client, program, participant), program)
    assert f'data-testid="catalog-item-{item.pk}"' in page
    assert "100 points" in page
    form = page.split(f'data-testid="catalog-item-{item.pk}"')[1].split("</form>")[0]
    assert "csrfmiddlewaretoken" in form
    assert "disabled" not in form

    response = _redeem(client, program, item, _token(page))

    assert response.status_code == 200
    assert response.redirect_chain[-1][0].endswith(_base(program) + "#catalog")
    page = html.unescape(response.content.decode())
    reward = Reward.objects.for_merchant(program.merchant).get(catalog_item=item)
    assert reward.status == Reward.Status.ISSUED
    assert reward.coupon_code
    assert "Done! You spent 100 points on 20 PLN voucher." in page
    new = page.split('data-testid="redeemed"')[1].split("</section>")[0]
    assert f'value="{reward.coupon_code}"' in new
    assert "data-copy=" in new
    assert f"Valid until {_long_date(reward.expires_at)}." in new
    assert 'data-points="20"' in page
    assert ledger_balance(participant=participant, program=program) == 20
    assert "Redeemed: 20 PLN voucher" in page
    assert "-100" in page
    assert 'data-testid="redeemed"' not in _page(client, program)  # shown once; then it is one reward of the list


def test_a_short_balance_disables_the_button_and_a_forced_post_says_so_kindly(client, program, referrer):
    participant, _code = referrer
    _give_points(program, participant, 120)
    item = _item(program, name="Dinner for two", points=500)
    page = _page(_sign_in(client, program, participant), program)
    form = page.split(f'data-testid="catalog-item-{item.pk}"')[1].split("</form>")[0]
    assert " disabled>" in form
    assert "You need 380 more points." in form

    response = _redeem(client, program, item, _token(page))

    assert response.status_code == 200
    assert "You need 380 more points for Dinner for two." in html.unescape(response.content.decode())
    assert not Reward.objects.for_merchant(program.merchant).filter(catalog_item=item).exists()
    assert ledger_balance(participant=participant, program=program) == 120


def test_an_item_out_of_stock_says_so_and_spends_nothing(client, program, referrer):
    participant, _code = referrer
    _give_points(program, participant, 120)
    pool = CouponPool.objects.for_merchant(program.merchant).create(program=program, name="empty")
    item = _item(program, name="Mystery box", kind=Kind.POOL_COUPON, pool=pool)
    page = _page(_sign_in(client, program, participant), program)

    response = _redeem(client, program, item, _token(page))

    assert response.status_code == 200
    assert "Mystery box is out of stock right now. Your points were not spent" in html.unescape(
        response.content.decode()
    )
    assert ledger_balance(participant=participant, program=program) == 120
    assert not Reward.objects.for_merchant(program.merchant).filter(catalog_item=item).exists()


def test_a_double_click_redeems_once_and_shows_the_same_coupon(client, program, referrer):
    participant, _code = referrer
    _give_points(program, participant, 250)
    item = _item(program)
    token = _token(_page(_sign_in(client, program, participant), program))

    first = _redeem(client, program, item, token)
    second = _redeem(client, program, item, token)

    reward = Reward.objects.for_merchant(program.merchant).get(catalog_item=item)
    assert _spent(program, participant) == [Decimal(-100)]
    assert ledger_balance(participant=participant, program=program) == 150
    assert reward.coupon_code in first.content.decode()
    page = html.unescape(second.content.decode())
    assert "You already redeemed this; here is your reward." in page
    assert f'value="{reward.coupon_code}"' in page.split('data-testid="redeemed"')[1].split("</section>")[0]

    third = _redeem(client, program, item, _token(page))  # a new page view is a new decision: it redeems again
    assert third.status_code == 200
    assert _spent(program, participant) == [Decimal(-100), Decimal(-100)]


@pytest.mark.django_db(transaction=True)
def test_concurrent_clicks_with_one_token_redeem_once(program, referrer):
    participant, _code = referrer
    _give_points(program, participant, 1000)
    item = _item(program)
    signed_in = _sign_in(Client(), program, participant)
    token = _token(_page(signed_in, program))
    cookies = {name: morsel.value for name, morsel in signed_in.cookies.items()}

    def click(_index: int) -> int:
        browser = Client()
        browser.cookies.load(cookies)  # the same browser session, clicked from several tabs at once
        return browser.post(_base(program) + "redeem/", {"item": item.pk, "token": token}).status_code

    statuses, errors = run_together(6, click)

    assert errors == []
    assert statuses == [302] * 6
    assert Reward.objects.for_merchant(program.merchant).filter(catalog_item=item).count() == 1
    assert ledger_balance(participant=participant, program=program) == 900


def test_a_post_without_a_valid_token_redeems_nothing(client, program, referrer):
    participant, _code = referrer
    _give_points(program, participant, 120)
    item = _item(program)
    page = _page(_sign_in(client, program, participant), program)
    token = _token(page)

    for forged in ("", "nonsense", token[:-3] + "abc"):
        response = _redeem(client, program, item, forged)
        assert "This page was open for a long time. Please try again." in html.unescape(response.content.decode())
    anna_two = join(program, email="anna2@example.pl", external_id="c-43")[0]
    other_browser = _sign_in(Client(), program, anna_two)
    _give_points(program, anna_two, 500)
    _redeem(other_browser, program, item, token)  # Anna's token is hers only
    assert not Reward.objects.for_merchant(program.merchant).filter(catalog_item=item).exists()
    assert Client().post(_base(program) + "redeem/", {"item": item.pk, "token": token}).status_code == 302
    assert not Reward.objects.for_merchant(program.merchant).filter(catalog_item=item).exists()


def test_redeeming_another_programs_item_is_refused(client, tenant, other_tenant, program, referrer):
    participant, _code = referrer
    _give_points(program, participant, 50)
    _item(program, name="Sticker", points=10)
    vip = ProgramFactory(merchant=tenant.merchant, slug="vip")
    join(vip, email=participant.email, external_id=participant.external_id)
    _give_points(vip, participant, 1000)  # rich in the other program, which this page does not spend
    vip_item = _item(vip, name="VIP lounge", points=10)
    foreign_program = ProgramFactory(merchant=other_tenant.merchant, slug="friends")
    foreign_item = _item(foreign_program, name="Foreign gift", points=1)
    page = _page(_sign_in(client, program, participant), program)
    assert "VIP lounge" not in page
    assert "Foreign gift" not in page

    for item in (vip_item, foreign_item):
        response = _redeem(client, program, item, _token(page))
        assert "This item is not in the catalog any more." in html.unescape(response.content.decode())
    assert not Reward.objects.for_merchant(tenant.merchant).filter(catalog_item__isnull=False).exists()
    assert not Reward.objects.for_merchant(other_tenant.merchant).exists()
    assert ledger_balance(participant=participant, program=vip) == 1000


# --- milestones -----------------------------------------------------------------------------------------------------


def test_milestone_progress_bar_and_the_milestones_reached(client, tenant, program, referrer):
    participant, code = referrer
    common = {"trigger": RewardRule.Trigger.MILESTONE, "value_type": "fixed", "hold_days": 0}
    rule(program, name="first", milestone=1, kind=Kind.POINTS, value=Decimal(50), **common)
    rule(program, name="fifth", milestone=5, kind=Kind.PERCENT_COUPON, value=Decimal(20), **common)
    for n in range(3):  # three friends bought and their orders passed fraud scoring
        process(tenant, order(tenant, code, order_id=f"m-{n}", friend=f"friend{n}@example.org")["id"])

    page = _page(_sign_in(client, program, participant), program)

    assert "3 of 5 friends — 2 more for a 20% off coupon" in page
    bar = re.search(r'<div class="progress" role="progressbar"[^>]*>', page.replace("\n", " ")).group(0)
    assert 'aria-valuemin="0"' in bar
    assert 'aria-valuemax="5"' in bar
    assert 'aria-valuenow="3"' in bar
    assert 'aria-valuetext="3 of 5 friends"' in bar
    assert 'style="width: 60%"' in page
    reached = page.split("Milestones reached")[1].split("</ul>")[0]
    assert "1 friend: 50 points" in reached
    assert "20% off" not in reached


def test_the_dashboard_links_to_the_leaderboard_when_the_program_has_one(client, program, referrer):
    signed_in = _sign_in(client, program, referrer[0])
    assert 'data-testid="leaderboard-link"' not in _page(signed_in, program)
    program.leaderboard_enabled = True
    program.save(update_fields=["leaderboard_enabled"])
    page = _page(signed_in, program)
    link = re.search(r'<a href="([^"]+)" data-testid="leaderboard-link">', page).group(1)
    assert link == _base(program) + "leaderboard/"
    assert signed_in.get(link).status_code == 200


def _milestone(program, milestone: int, value: str, **fields) -> RewardRule:
    common = {"trigger": RewardRule.Trigger.MILESTONE, "value_type": "fixed", "hold_days": 0}
    return rule(program, name=f"Internal: milestone {milestone}", milestone=milestone, kind=Kind.STORE_CREDIT,
                value=Decimal(value), **common, **fields)  # fmt: skip


def test_milestones_promise_only_what_this_participant_can_still_earn(client, tenant, program, referrer):
    from programs.models import ProgramVariant
    from tests.portal.test_portal_leaderboard import _friends_bought

    participant, code = referrer
    a, b = (ProgramVariant.objects.for_merchant(tenant.merchant).create(program=program, name=n) for n in "AB")
    code.variant = a
    code.save(update_fields=["variant"])
    ended = {"valid_from": _day(-60), "valid_until": _day(-30)}
    paid_then_ended = _milestone(program, 1, "11", **ended)
    _milestone(program, 2, "22", **ended)  # an offer that ended before they reached it
    _milestone(program, 3, "33", variant=b)  # the other variant's
    _milestone(program, 4, "44", variant=a)
    _reward(program, participant, paid_then_ended, status="issued", milestone=1)
    _friends_bought(code, 1)

    page = _page(_sign_in(client, program, participant), program)

    assert "1 of 4 friends — 3 more for 44.00 PLN in store credit" in page
    assert "11.00 PLN in store credit" in page.split("Milestones reached")[1]  # paid: still reached
    assert "22.00 PLN" not in page
    assert "33.00 PLN" not in page

    program.leaderboard_enabled = True
    program.save(update_fields=["leaderboard_enabled"])
    board = html.unescape(client.get(_base(program) + "leaderboard/").content.decode())
    assert "44.00 PLN in store credit" in board
    assert "11.00 PLN in store credit" in board
    assert "22.00 PLN" not in board
    assert "33.00 PLN" not in board
    assert "Internal:" not in board  # the staff's rule names never reach the customer


@pytest.mark.parametrize(
    ("lang", "coupon", "credit", "cash"),
    [("en", "1,500 JPY", "12,000 JPY in store credit", "2,000 JPY in cash"),
     ("pl", "1\xa0500 JPY", "12\xa0000 JPY", "2\xa0000 JPY"),
     ("ru", "1\xa0500 JPY", "12\xa0000 JPY", "2\xa0000 JPY")],
)  # fmt: skip
def test_amounts_in_the_portal_have_the_currencys_decimals(client, tenant, lang, coupon, credit, cash):
    program = ProgramFactory(merchant=tenant.merchant, slug="jp", currency="JPY")
    participant, _code = join(program, email="aiko@people.example", external_id="a-1", name="Aiko")
    for kind, value, status in [(Kind.AMOUNT_COUPON, "1500", "approved"), (Kind.STORE_CREDIT, "12000", "pending"),
                                (Kind.CASH, "2000", "approved")]:  # fmt: skip
        given = rule(program, name=kind, kind=kind, value_type="fixed", value=Decimal(value))
        _reward(program, participant, given, status=status, hold_until=_day(5))
    _milestone(program, 3, "500")

    page = _page(_sign_in(client, program, participant), program, lang)

    for text in (coupon, credit, cash):
        assert text in page, text
    assert "500 JPY" in page  # the milestone
    assert ".00 JPY" not in page
    assert ",00 JPY" not in page


# --- language and isolation -----------------------------------------------------------------------------------------


def test_the_polish_page_shows_the_rewards_block_in_polish(client, program, referrer):
    participant, _code = referrer
    _give_points(program, participant, 120)
    coupon = rule(program, name="coupon", kind=Kind.PERCENT_COUPON, value_type="fixed", value=Decimal(15))
    pending = _reward(program, participant, coupon, status="pending", hold_until=_day(20))
    _reward(program, participant, coupon, status="issued", coupon_code="REF-PL123456", expires_at=_day(30))
    _item(program, name="Kubek", points=500)

    page = _page(_sign_in(client, program, participant), program, lang="pl")

    for polish in ("Twoje nagrody", "Twoje punkty", "Historia punktów", "Wymień punkty", "Kopiuj", "Wymień"):
        assert polish in page, polish
    assert f"Zostanie przyznana {_long_date(pending.hold_until, 'pl')}" in page
    assert "kupon" in page.lower()
    for english in ("Your rewards", "Your points", "Points history", "Released on", "Ready to use", "more points"):
        assert english not in page, english


def test_another_shops_participant_and_rewards_never_show(client, program, referrer, other_tenant):
    participant, _code = referrer
    coupon = rule(program, name="coupon", kind=Kind.AMOUNT_COUPON, value_type="fixed", value=Decimal("10.00"))
    _reward(program, participant, coupon, status="issued", coupon_code="REF-MINE1234")
    theirs = ProgramFactory(merchant=other_tenant.merchant, slug="friends")
    twin, _twin_code = join(theirs, email=participant.email, external_id=participant.external_id)
    their_rule = rule(theirs, name="coupon", kind=Kind.AMOUNT_COUPON, value_type="fixed", value=Decimal("99.00"))
    _reward(theirs, twin, their_rule, status="issued", coupon_code="REF-THEIRS99")
    _give_points(theirs, twin, 777)
    sibling = ProgramFactory(merchant=program.merchant, slug="sibling")
    join(sibling, email=participant.email, external_id=participant.external_id)
    sibling_rule = rule(sibling, name="coupon", kind=Kind.AMOUNT_COUPON, value_type="fixed", value=Decimal("5.00"))
    _reward(sibling, participant, sibling_rule, status="issued", coupon_code="REF-SIBLING1")

    page = _page(_sign_in(client, program, participant), program)

    assert "REF-MINE1234" in page
    assert "REF-THEIRS99" not in page
    assert "99.00" not in page
    assert "777" not in page
    assert "REF-SIBLING1" not in page  # another program's rewards belong on that program's page
    their_page = _page(_sign_in(Client(), theirs, twin), theirs)
    assert "REF-THEIRS99" in their_page
    assert "REF-MINE1234" not in their_page


def test_a_waiting_milestone_reward_says_why_and_the_milestone_is_not_shown_as_reached(tenant, program, referrer):
    from rewards.services import refund_apply, rewards_release_due
    from tracking.models import Refund

    participant, code = referrer
    rule(program, trigger=RewardRule.Trigger.MILESTONE, milestone=1, kind=Kind.AMOUNT_COUPON,
         value_type=RewardRule.ValueType.FIXED, value=Decimal("50"), hold_days=0)  # fmt: skip
    process(tenant, order(tenant, code, order_id="a")["id"])
    tenant.api.post("/api/v1/conversions/a/refunds", {"amount": "129.90", "refund_id": "r-a"}, format="json")
    refund_apply(merchant=tenant.merchant, refund_id=Refund.objects.for_merchant(tenant.merchant).get().pk)
    rewards_release_due()  # the friend who counted returned everything: it waits

    page = _page(_sign_in(Client(), program, participant), program)

    assert "You get it when you reach this milestone again" in page
    assert "Released on" not in page
    assert "Milestones reached" not in page
    assert "0 of 1 friend — 1 more for a coupon worth 50.00 PLN" in page
