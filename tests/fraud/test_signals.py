"""Each fraud signal flags the order it is about, and a clean referral passes with score 0."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from fraud.models import Decision, FraudSettings
from fraud.services import blocklist_entry_add, conversion_assess, referral_assess, sighting_record
from portal.services import portal_sso_url
from programs.models import Participant
from programs.services import participant_set_status
from tests.factories import ProgramFactory, fullwidth, join
from tracking.clicks import clicks_ingest, hash_ip
from tracking.models import Click, Referral
from tracking.services import conversion_record, referral_record_signup

pytestmark = pytest.mark.django_db

CHROME = "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; rv:131.0) Firefox/131.0"


def _signals(assessment) -> dict[str, int]:
    return {s["name"]: s["weight"] for s in assessment.signals}


def _anna(referrer) -> Participant:
    return referrer[0]


def test_a_clean_referral_scores_zero_and_is_approved(tenant, referrer, place_order):
    sighting_record(merchant=tenant.merchant, participant=_anna(referrer), ip="198.51.100.1", user_agent=CHROME)
    order = place_order(ip="203.0.113.7", user_agent=FIREFOX, payment_fingerprint="fp-bob", address_hash="addr-bob")

    assessment = conversion_assess(conversion=order)

    assert (assessment.score, assessment.signals) == (0, [])
    assert assessment.decision == assessment.auto_decision == Decision.APPROVE
    order.refresh_from_db()
    assert order.status == "attributed"


def test_self_referral_when_the_referrer_account_took_the_friends_email(tenant, referrer, place_order):
    order = place_order(email="bob@friends.example")
    # After the order was attributed, Anna's account is changed to Bob's address: she is the friend.
    Participant.objects.for_merchant(tenant.merchant).filter(pk=_anna(referrer).pk).update(
        email="bob@friends.example", email_normalized="bob@friends.example"
    )

    assessment = conversion_assess(conversion=order)

    assert _signals(assessment) == {"self_referral": 100}
    assert assessment.decision == Decision.REJECT


def test_self_referral_when_the_referee_participant_is_the_referrer(tenant, referrer, place_order):
    order = place_order()
    Referral.objects.for_merchant(tenant.merchant).filter(pk=order.referral_id).update(referee=_anna(referrer))

    assert _signals(conversion_assess(conversion=order)) == {"self_referral": 100}


def test_shared_ip_with_a_referrer_sighting(tenant, referrer, place_order):
    sighting_record(merchant=tenant.merchant, participant=_anna(referrer), ip="203.0.113.7", user_agent=CHROME)
    order = place_order(ip="203.0.113.7", user_agent=FIREFOX)

    assessment = conversion_assess(conversion=order)

    assert _signals(assessment) == {"shared_ip": 25}
    assert assessment.decision == Decision.APPROVE  # a household shares an IP: not enough alone
    assert "sign-up" in assessment.signals[0]["detail"]


def test_shared_ip_and_user_agent_weigh_more_and_need_a_review(tenant, referrer, place_order):
    sighting_record(merchant=tenant.merchant, participant=_anna(referrer), ip="203.0.113.7", user_agent=CHROME)
    order = place_order(ip="203.0.113.7", user_agent=CHROME)

    assessment = conversion_assess(conversion=order)

    assert _signals(assessment) == {"shared_ip": 40}
    assert assessment.decision == Decision.REVIEW


def test_shared_ip_with_the_referrers_own_order_and_the_friends_click(tenant, referrer, place_order, make_click):
    place_order("ANNA-OWN", email="anna.kowalska@gmail.com", external_id="c-42", code=None, ip="192.0.2.55")
    click = make_click(ip_hash=hash_ip("192.0.2.55"), user_agent=FIREFOX)
    order = place_order(code=None, click_id=str(click.click_id), ip="203.0.113.99")  # ordered from elsewhere

    assessment = conversion_assess(conversion=order)

    assert _signals(assessment) == {"shared_ip": 25}
    assert "seen at the referrer's order)" in assessment.signals[0]["detail"]


def test_shared_device(tenant, referrer, place_order):
    sighting_record(merchant=tenant.merchant, participant=_anna(referrer), device_id="dev-123")
    order = place_order(device_id="dev-123")

    assessment = conversion_assess(conversion=order)

    assert _signals(assessment) == {"shared_device": 50}
    assert assessment.decision == Decision.REVIEW


def _portal_sign_in_then_click(browser, program, code, *, ip: str) -> str:
    """Anna signs in to the portal in `browser` (a shop-signed link), then the browser follows her link; the click
    reaches PostgreSQL through the real buffer and ingest. Returns the click id."""
    sso = "/" + portal_sso_url(program=program, external_id="c-42", email="anna.kowalska@gmail.com").split("/", 3)[3]
    assert browser.get(sso, REMOTE_ADDR="198.51.100.1", HTTP_USER_AGENT=CHROME).status_code == 302
    return _click_from(browser, code, ip=ip)


def _click_from(browser, code, *, ip: str) -> str:
    response = browser.get(f"/r/{code.code}", REMOTE_ADDR=ip, HTTP_USER_AGENT=FIREFOX)
    assert clicks_ingest() == 1
    return parse_qs(urlsplit(response["Location"]).query)["rs_click"][0]


def test_a_click_from_the_browser_the_referrer_uses_for_the_portal_is_a_shared_device(
    tenant, program, referrer, place_order, click_stream
):
    _participant, code = referrer
    browser = Client()
    click_id = _portal_sign_in_then_click(browser, program, code, ip="203.0.113.50")

    order = place_order(code=None, click_id=click_id, ip="203.0.113.51")  # the shop sent no device id

    assessment = conversion_assess(conversion=order)
    assert _signals(assessment)["shared_device"] == 50
    assert "click" in next(s["detail"] for s in assessment.signals if s["name"] == "shared_device")
    assert assessment.decision in (Decision.REVIEW, Decision.REJECT)


def test_a_click_from_the_friends_own_browser_is_no_shared_device(tenant, program, referrer, place_order, click_stream):
    _participant, code = referrer
    _portal_sign_in_then_click(Client(), program, code, ip="203.0.113.50")  # Anna tries her link herself
    friends_click = _click_from(Client(), code, ip="203.0.113.60")

    order = place_order(code=None, click_id=friends_click, ip="203.0.113.61", device_id="bobs-shop-device-01")

    assert "shared_device" not in _signals(conversion_assess(conversion=order))


def test_an_order_seconds_after_a_click_still_in_the_buffer_is_scored_with_that_click(
    tenant, program, referrer, place_order, click_stream
):
    """The fastest orders are the suspicious ones: an order naming a click that has not reached PostgreSQL yet links
    to it, so fast_click_to_order and the click's device count; the later ingest adds no second click."""
    _participant, code = referrer
    browser = Client()
    sso = "/" + portal_sso_url(program=program, external_id="c-42", email="anna.kowalska@gmail.com").split("/", 3)[3]
    browser.get(sso, REMOTE_ADDR="198.51.100.1", HTTP_USER_AGENT=CHROME)
    response = browser.get(f"/r/{code.code}", REMOTE_ADDR="203.0.113.50", HTTP_USER_AGENT=FIREFOX)
    click_id = parse_qs(urlsplit(response["Location"]).query)["rs_click"][0]
    assert not Click.objects.for_merchant(tenant.merchant).exists()  # still in the Redis stream

    order = place_order(code=None, click_id=click_id, ip="203.0.113.51")

    assert order.click is not None
    assert order.click.click_id.hex == click_id
    assert _signals(conversion_assess(conversion=order)) == {"shared_device": 50, "fast_click_to_order": 15}
    assert clicks_ingest() == 1  # the buffered entry is drained ...
    assert Click.objects.for_merchant(tenant.merchant).count() == 1  # ... without a second row


def test_same_payment_fingerprint_as_the_referrers_own_order(tenant, referrer, place_order):
    place_order("ANNA-OWN", email="anna.kowalska@gmail.com", external_id=None, code=None, payment_fingerprint="fp-1")
    order = place_order(payment_fingerprint="fp-1")

    assessment = conversion_assess(conversion=order)

    assert _signals(assessment) == {"same_payment_fingerprint": 50}
    assert assessment.decision == Decision.REVIEW


def test_same_payment_fingerprint_plus_shared_ip_is_rejected(tenant, referrer, place_order):
    place_order("ANNA-OWN", email=None, external_id="c-42", code=None, payment_fingerprint="fp-1", ip="192.0.2.5")
    order = place_order(payment_fingerprint="fp-1", ip="192.0.2.5", user_agent=FIREFOX)

    assessment = conversion_assess(conversion=order)

    assert _signals(assessment) == {"same_payment_fingerprint": 50, "shared_ip": 25}
    assert (assessment.score, assessment.decision) == (75, Decision.REJECT)


def test_same_address_as_the_referrers_own_order(tenant, referrer, place_order):
    place_order("ANNA-OWN", email="anna.kowalska@gmail.com", external_id="c-42", code=None, address_hash="addr-9")
    order = place_order(address_hash="addr-9")

    assert _signals(conversion_assess(conversion=order)) == {"same_address": 35}


def test_disposable_email_alone_needs_a_review(referrer, place_order):
    order = place_order(email="bob@mailinator.com", external_id=None)

    assessment = conversion_assess(conversion=order)

    assert _signals(assessment) == {"disposable_email": 30}
    assert assessment.decision == Decision.REVIEW
    assert "mailinator.com" in assessment.signals[0]["detail"]


def test_a_disposable_domain_in_unicode_look_alikes_is_still_disposable(referrer, place_order):
    order = place_order(email=f"bob@{fullwidth('mailinator')}.com", external_id=None)  # fullwidth letters

    assert _signals(conversion_assess(conversion=order)) == {"disposable_email": 30}


def test_disposable_email_check_can_be_switched_off_per_program(tenant, program, referrer, place_order):
    FraudSettings.objects.for_merchant(tenant.merchant).create(program=program, check_disposable_email=False)
    order = place_order(email="bob@mailinator.com", external_id=None)

    assessment = conversion_assess(conversion=order)

    assert (assessment.score, assessment.decision) == (0, Decision.APPROVE)


def test_velocity_more_orders_an_hour_than_the_program_allows(tenant, program, referrer, place_order):
    FraudSettings.objects.for_merchant(tenant.merchant).create(program=program, velocity_per_hour=2)
    orders = [place_order(f"V-{n}", email=f"friend{n}@friends.example", external_id=None) for n in range(3)]

    scores = [_signals(conversion_assess(conversion=order)) for order in orders]

    assert scores[:2] == [{}, {}]
    assert scores[2] == {"velocity": 30}


def test_velocity_more_orders_a_day_than_the_program_allows(tenant, program, referrer, place_order):
    FraudSettings.objects.for_merchant(tenant.merchant).create(program=program, velocity_per_day=1)
    now = place_order("V-0", email="first@friends.example", external_id=None).occurred_at
    second = place_order("V-1", email="second@friends.example", external_id=None, occurred_at=now - timedelta(hours=5))

    assessment = conversion_assess(conversion=second)

    assert _signals(assessment) == {}  # the other order came later: not before this one
    third = place_order("V-2", email="third@friends.example", external_id=None, occurred_at=now + timedelta(hours=3))
    assert "in a day" in conversion_assess(conversion=third).signals[0]["detail"]


def test_fast_click_to_order(referrer, place_order, make_click):
    click = make_click(seconds_ago=5)
    order = place_order(code=None, click_id=str(click.click_id))

    assessment = conversion_assess(conversion=order)

    assert _signals(assessment) == {"fast_click_to_order": 15}


def test_an_order_a_while_after_the_click_is_not_fast(referrer, place_order, make_click):
    click = make_click(seconds_ago=600)
    order = place_order(code=None, click_id=str(click.click_id))

    assert _signals(conversion_assess(conversion=order)) == {}


def test_not_new_customer(tenant, referrer, place_order):
    code = referrer[1]
    code.program.new_customers_only = False
    code.program.save(update_fields=["new_customers_only"])
    place_order("BOB-EARLIER", code=None)  # Bob bought before anyone referred him
    order = place_order("BOB-REFERRED")

    assert order.is_new_customer is False
    assert _signals(conversion_assess(conversion=order)) == {"not_new_customer": 20}


def test_blocked_participant(referrer, place_order):
    order = place_order()
    participant_set_status(participant=_anna(referrer), status=Participant.Status.BLOCKED)

    assessment = conversion_assess(conversion=order)

    assert _signals(assessment) == {"blocked_participant": 100}
    assert assessment.decision == Decision.REJECT


@pytest.mark.parametrize(
    ("kind", "value", "order", "who"),
    [
        ("email", "Bob@Friends.example", {}, "friend's email address"),
        ("domain", "friends.example", {}, "friend's email domain"),
        ("domain", "friends.example", {"email": "bob@shop.friends.example"}, "friend's email domain"),
        ("ip", "203.0.113.7", {"ip": "203.0.113.7"}, "friend's ip address"),
        ("cidr", "203.0.113.0/24", {"ip": "203.0.113.200"}, "friend's ip network"),
        ("cidr", "2001:db8::/32", {"ip": "2001:db8::1"}, "friend's ip network"),
        ("email", "anna.kowalska+x@gmail.com", {}, "referrer's email address"),
        # an international domain blocked in one form, the friend writing it in the other (or in look-alikes)
        ("domain", "bücher.example", {"email": "cheat@xn--bcher-kva.example"}, "friend's email domain"),
        ("domain", "xn--bcher-kva.example", {"email": "cheat@BÜCHER.example"}, "friend's email domain"),
        ("domain", "friends.example", {"email": f"bob@{fullwidth('friends')}.example"}, "friend's email domain"),
    ],
)
def test_blocklist_flags_the_friend_or_the_referrer(tenant, referrer, place_order, kind, value, order, who):
    blocklist_entry_add(merchant=tenant.merchant, kind=kind, value=value, note="chargebacks")
    conversion = place_order(**order)

    assessment = conversion_assess(conversion=conversion)

    assert _signals(assessment) == {"blocklist": 100}
    assert who in assessment.signals[0]["detail"]
    assert assessment.decision == Decision.REJECT


def test_blocklisted_ip_matches_the_referrers_sighting_by_its_hash(tenant, referrer, place_order):
    blocklist_entry_add(merchant=tenant.merchant, kind="ip", value="192.0.2.1")
    sighting_record(merchant=tenant.merchant, participant=_anna(referrer), ip="192.0.2.1")

    assessment = conversion_assess(conversion=place_order(ip="203.0.113.7"))

    assert _signals(assessment) == {"blocklist": 100}
    assert "referrer's ip address" in assessment.signals[0]["detail"]


def test_another_merchants_blocklist_and_sightings_do_not_count(tenant, other_tenant, referrer, place_order):
    other_program = ProgramFactory(merchant=other_tenant.merchant)
    stranger, _code = join(other_program, email="anna.kowalska@gmail.com", external_id="c-42")
    sighting_record(merchant=other_tenant.merchant, participant=stranger, ip="203.0.113.7", user_agent=CHROME)
    blocklist_entry_add(merchant=other_tenant.merchant, kind="domain", value="friends.example")

    assessment = conversion_assess(conversion=place_order(ip="203.0.113.7", user_agent=CHROME))

    assert (assessment.score, assessment.signals) == (0, [])


# --- at the friend's sign-up ----------------------------------------------------------------------------------------


def _sign_up(referrer, email="bob@friends.example", **extra) -> Referral:
    code = referrer[1]
    extra.setdefault("code", code.code)
    return referral_record_signup(
        merchant=code.merchant, livemode=True, customer_external_id=None, customer_email=email, **extra
    )[0]


def test_a_clean_sign_up_is_approved(referrer):
    assessment = referral_assess(referral=_sign_up(referrer))

    assert (assessment.score, assessment.decision, assessment.conversion_id) == (0, Decision.APPROVE, None)


def test_a_sign_up_with_a_disposable_email_needs_a_review(referrer):
    assessment = referral_assess(referral=_sign_up(referrer, email="bob@guerrillamail.com"))

    assert _signals(assessment) == {"disposable_email": 30}
    assert assessment.decision == Decision.REVIEW


def test_a_sign_up_from_the_referrers_ip_and_browser(tenant, referrer, make_click):
    sighting_record(merchant=tenant.merchant, participant=_anna(referrer), ip="203.0.113.7", user_agent=CHROME)
    click = make_click(ip_hash=hash_ip("203.0.113.7"), user_agent=CHROME)

    assessment = referral_assess(referral=_sign_up(referrer, code=None, click_id=str(click.click_id)))

    assert _signals(assessment) == {"shared_ip": 40}


def test_a_sign_up_from_the_browser_the_referrer_uses_for_the_portal_is_a_shared_device(
    tenant, program, referrer, click_stream
):
    click_id = _portal_sign_in_then_click(Client(), program, referrer[1], ip="203.0.113.50")

    assessment = referral_assess(referral=_sign_up(referrer, code=None, click_id=click_id))

    assert _signals(assessment)["shared_device"] == 50
    assert assessment.decision in (Decision.REVIEW, Decision.REJECT)


def test_a_sign_up_from_the_friends_own_browser_is_no_shared_device(tenant, program, referrer, click_stream):
    _portal_sign_in_then_click(Client(), program, referrer[1], ip="203.0.113.50")
    friends_click = _click_from(Client(), referrer[1], ip="203.0.113.60")

    assert "shared_device" not in _signals(
        referral_assess(referral=_sign_up(referrer, code=None, click_id=friends_click))
    )


def test_sign_up_velocity_counts_the_referrers_new_friends(tenant, program, referrer):
    FraudSettings.objects.for_merchant(tenant.merchant).create(program=program, velocity_per_hour=2)
    referrals = [_sign_up(referrer, email=f"f{n}@friends.example") for n in range(3)]

    assert [_signals(referral_assess(referral=r)) for r in referrals] == [{}, {}, {"velocity": 30}]
    assert "sign-ups" in referral_assess(referral=referrals[2]).signals[0]["detail"]


def test_a_sign_up_rejected_as_fraud_keeps_the_friends_later_order_rejected(tenant, referrer, place_order):
    blocklist_entry_add(merchant=tenant.merchant, kind="email", value="bob@friends.example")
    referral = _sign_up(referrer)

    assert referral_assess(referral=referral).decision == Decision.REJECT
    referral.refresh_from_db()
    assert (referral.status, referral.rejection_reason) == ("rejected", "fraud")
    order = place_order()
    assert (order.status, order.rejection_reason) == ("rejected", "fraud")
    # The order is still scored, so that it shows in the queue and a person can overturn it.
    assessment = conversion_assess(conversion=order)
    assert _signals(assessment) == {"referral_rejected": 100, "blocklist": 100}
    assert (assessment.score, assessment.decision) == (100, Decision.REJECT)


def test_orders_of_other_merchants_with_the_referrers_email_are_not_hers(tenant, other_tenant, referrer, place_order):
    conversion_record(
        merchant=other_tenant.merchant,
        livemode=True,
        order_id="X-1",
        amount=Decimal("10.00"),
        currency="PLN",
        customer_email="anna.kowalska@gmail.com",
        payment_fingerprint="fp-1",
    )

    assert _signals(conversion_assess(conversion=place_order(payment_fingerprint="fp-1"))) == {}


def test_shared_ip_with_the_browser_of_the_friends_click(tenant, referrer, place_order, make_click):
    sighting_record(merchant=tenant.merchant, participant=_anna(referrer), ip="203.0.113.7", user_agent=CHROME)
    click = make_click(ip_hash=hash_ip("203.0.113.7"), user_agent=CHROME)
    order = place_order(code=None, click_id=str(click.click_id), ip="203.0.113.7", user_agent=FIREFOX)

    assert _signals(conversion_assess(conversion=order)) == {"shared_ip": 40}


# --- the referrer's email name at another domain ----------------------------------------------------------------


def test_the_referrers_email_name_at_another_domain_is_a_moderate_signal(referrer, place_order):
    # Anna is anna.kowalska@gmail.com; the friend has her name at Outlook (with a +tag, which folds)
    order = place_order(email="Anna.Kowalska+promo@outlook.com", external_id=None)

    assessment = conversion_assess(conversion=order)

    assert _signals(assessment) == {"same_email_name": 25}
    assert assessment.decision == Decision.APPROVE  # a namesake is possible: alone it holds nothing back
    detail = assessment.signals[0]["detail"]
    assert "(anna.kowalska)" in detail
    assert "outlook.com, the referrer's gmail.com" in detail


def test_the_same_email_name_and_a_shared_ip_wait_for_a_review(tenant, referrer, place_order):
    sighting_record(merchant=tenant.merchant, participant=_anna(referrer), ip="203.0.113.7", user_agent=CHROME)
    order = place_order(email="anna.kowalska@proton.me", external_id=None, ip="203.0.113.7", user_agent=FIREFOX)

    assessment = conversion_assess(conversion=order)

    assert _signals(assessment) == {"shared_ip": 25, "same_email_name": 25}
    assert assessment.decision == Decision.REVIEW


@pytest.mark.parametrize(
    "email", ["bob@friends.example", "anna.nowak@outlook.com", "anna@outlook.com", "kowalska.anna@outlook.com"]
)
def test_another_name_before_the_at_is_no_signal(referrer, place_order, email):
    assert _signals(conversion_assess(conversion=place_order(email=email, external_id=None))) == {}


def test_the_same_email_name_is_flagged_at_the_friends_sign_up_too(referrer):
    assessment = referral_assess(referral=_sign_up(referrer, email="anna.kowalska@proton.me"))

    assert _signals(assessment) == {"same_email_name": 25}


def test_a_programs_thresholds_decide_the_same_email_name_and_the_queue_explains_it(
    tenant, program, referrer, place_order
):
    FraudSettings.objects.for_merchant(tenant.merchant).create(program=program, review_threshold=25)
    order = place_order("SAME-NAME", email="anna.kowalska@outlook.com", external_id=None)

    assessment = conversion_assess(conversion=order)

    assert assessment.decision == Decision.REVIEW
    queue = tenant.admin.get("/admin/fraud/fraudassessment/").content.decode()
    assert "Same email name as the referrer at another domain <b>+25</b>" in queue
    page = tenant.admin.get(f"/admin/fraud/fraudassessment/{assessment.pk}/change/").content.decode()
    assert "name before the @ (anna.kowalska) at another domain" in page
