"""The referrer portal as a customer uses it: join, sign in, share, invite, follow results, own their data."""

from __future__ import annotations

import json
import re
import time
from unittest import mock

import pytest
from django.core import mail
from django.test import Client

from portal.services import portal_sso_url
from portal.tasks import send_invites
from programs.models import Invite, Participant, ShareEvent
from referral_saas.celery import app as celery_app
from tests.portal.helpers import invite_task_kwargs
from tracking.models import ReferralCode

pytestmark = pytest.mark.django_db


def _base(program, lang: str = "en") -> str:
    return (
        f"/{lang}/p/{program.merchant.slug}/{program.slug}/" if lang else f"/p/{program.merchant.slug}/{program.slug}/"
    )


def _join_and_sign_in(client: Client, program, email="kasia@example.pl", name="Kasia", lang="en") -> Participant:
    client.post(
        _base(program) + "join/", {"email": email, "name": name, "accept_terms": "on"}, HTTP_ACCEPT_LANGUAGE=lang
    )
    link = re.search(r"https?://[^/\s]+(/\S+/sign-in/\S+/)", mail.outbox[-1].body).group(1)
    assert client.get(link).status_code == 200  # a page with a button: opening the link uses nothing up
    response = client.post(link)
    assert response.status_code == 302
    return Participant.objects.for_merchant(program.merchant).get(email=email)


def test_landing_page_shows_the_offer_terms_and_the_good_fit_text(client, program):
    program.terms, program.good_fit = "Rewards after 30 days.", "Friends who love coffee"
    program.save()
    page = client.get(_base(program), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "10% off your first order" in page
    assert "Friends who love coffee" in page
    assert "Rewards after 30 days." in page
    assert '<label for="id_email">' in page


def test_joining_emails_a_one_time_link_that_signs_in(client, program):
    response = client.post(
        _base(program) + "join/",
        {"email": "kasia@example.pl", "name": "Kasia", "accept_terms": "on"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    assert b"Check your inbox" in response.content
    assert mail.outbox[-1].to == ["kasia@example.pl"]
    participant = _join_and_sign_in(Client(), program)
    code = ReferralCode.objects.for_merchant(program.merchant).get(participant=participant)
    dashboard = Client()
    participant = _join_and_sign_in(dashboard, program)
    page = dashboard.get(_base(program), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f"/r/{code.code}" in page
    assert code.code in page
    for channel in ("whatsapp", "facebook", "x", "linkedin", "telegram", "vk", "sms", "email"):
        assert f"share/{channel}/" in page
    assert "qr.svg" in page


def test_a_sign_in_link_works_once(client, program):
    client.post(_base(program) + "join/", {"email": "k@example.pl", "accept_terms": "on"})
    link = re.search(r"https?://[^/\s]+(/\S+/sign-in/\S+/)", mail.outbox[-1].body).group(1)
    assert Client().get(link).status_code == 200  # a mail scanner opening the link burns nothing
    assert Client().post(link).status_code == 302
    again = Client().post(link, HTTP_ACCEPT_LANGUAGE="en")
    assert again.status_code == 400
    assert b"already used" in again.content


def test_an_old_sign_in_link_has_expired(client, program):
    client.post(_base(program) + "join/", {"email": "k@example.pl", "accept_terms": "on"})
    link = re.search(r"https?://[^/\s]+(/\S+/sign-in/\S+/)", mail.outbox[-1].body).group(1)
    with mock.patch("django.core.signing.time.time", return_value=time.time() + 31 * 60):
        response = Client().post(link, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert b"expired" in response.content


def test_a_tampered_sign_in_link_is_refused(client, program):
    response = client.post(_base(program) + "sign-in/abc.def.ghi/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert not Participant.objects.for_merchant(program.merchant).exists()


def test_join_requires_the_terms_and_a_valid_email(client, program):
    program.terms = "One reward per friend."  # without terms there is no box to tick (tests/test_journey_copy.py)
    program.save()
    response = client.post(_base(program) + "join/", {"email": "nope"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert b"Enter a valid email address" in response.content
    assert b"This field is required" in response.content
    assert mail.outbox == []


def test_sign_in_links_are_rate_limited_per_address(client, program):
    for _ in range(5):
        client.post(_base(program) + "join/", {"email": "k@example.pl", "accept_terms": "on"})
    sixth = client.post(
        _base(program) + "join/", {"email": "k@example.pl", "accept_terms": "on"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert sixth.status_code == 422
    assert b"Too many sign-in links" in sixth.content
    assert len(mail.outbox) == 5


def test_the_shop_signs_a_customer_in_with_an_hmac_link(client, program):
    url = "/" + portal_sso_url(program=program, external_id="c-99", email="vip@shop.example").split("/", 3)[3]
    response = client.get(url)
    assert response.status_code == 302
    participant = Participant.objects.for_merchant(program.merchant).get(external_id="c-99")
    assert participant.email == "vip@shop.example"
    assert client.get(_base(program)).status_code == 200
    assert Client().get(url, HTTP_ACCEPT_LANGUAGE="en").status_code == 403  # once only


def test_a_shop_link_for_one_program_does_not_open_another(client, program):
    from tests.factories import ProgramFactory

    other = ProgramFactory(merchant=program.merchant, slug="vip-club")
    url = portal_sso_url(program=program, external_id="c-99", email="vip@shop.example")
    path = "/" + url.split("/", 3)[3]
    response = client.get(path.replace("/friends/", "/vip-club/"), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 403
    assert not ReferralCode.objects.for_merchant(program.merchant).filter(program=other).exists()


def test_a_shop_link_never_signs_into_someone_else_with_the_same_email(client, program):
    from tests.factories import join

    join(program, external_id="victim-1", email="shared@x.example")
    url = portal_sso_url(program=program, external_id="attacker-2", email="shared@x.example")
    response = client.get("/" + url.split("/", 3)[3], HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 403
    assert client.get(_base(program) + "my-data.json").status_code == 302  # not signed in


@pytest.mark.parametrize("tamper", ["signature", "expired", "other-merchant-secret"])
def test_a_bad_shop_sign_in_link_is_refused(client, program, other_tenant, tamper):
    ts = int(time.time()) - (11 * 60 if tamper == "expired" else 0)
    if tamper == "other-merchant-secret":
        program.merchant.portal_secret = other_tenant.merchant.portal_secret
    url = portal_sso_url(program=program, external_id="c-99", email="vip@shop.example", ts=ts)
    if tamper == "signature":
        url = url[:-4] + "0000"
    program.merchant.refresh_from_db()
    response = client.get("/" + url.split("/", 3)[3], HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 403
    assert not Participant.objects.for_merchant(program.merchant).filter(external_id="c-99").exists()


HOSTILE_SIGNED_FIELDS = {
    "NUL in the customer id": {"external_id": "c-\x00-1"},
    "NUL in the email": {"email": "vip\x00@shop.example"},
    "customer id over 128 characters": {"external_id": "c" * 129},
    "email over 254 characters": {"email": "v" * 250 + "@shop.example"},
    "tab in the customer id": {"external_id": "c-\t1"},
    "newline in the customer id": {"external_id": "c-\n1"},
    "escape in the customer id": {"external_id": "c-\x1b[31m"},
    "DEL in the customer id": {"external_id": "c-\x7f"},
    "only spaces as customer id": {"external_id": "   "},
    "line break in the email": {"email": "vip@shop.example\r\nBcc: x@y.example"},
    "not an email": {"email": "no-at-sign"},
    "an IP literal email": {"email": "vip@[127.0.0.1]"},
}


@pytest.mark.parametrize("case", HOSTILE_SIGNED_FIELDS)
def test_a_correctly_signed_link_with_unusable_fields_is_refused_and_creates_nothing(client, program, case):
    fields = {"external_id": "c-99", "email": "vip@shop.example", **HOSTILE_SIGNED_FIELDS[case]}
    url = "/" + portal_sso_url(program=program, **fields).split("/", 3)[3]
    response = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 403
    assert b"This sign-in link is not valid." in response.content
    assert not Participant.objects.for_merchant(program.merchant).exists()
    assert not ReferralCode.objects.for_merchant(program.merchant).exists()
    assert client.get(_base(program) + "my-data.json").status_code == 302  # not signed in


def test_a_signed_link_at_the_limits_signs_in_once(client, program):
    external_id = "c/" + "9" * 126  # 128 characters, as the API takes them
    url = "/" + portal_sso_url(program=program, external_id=external_id, email="Vip.Shop@shop.example").split("/", 3)[3]
    assert client.get(url).status_code == 302
    participant = Participant.objects.for_merchant(program.merchant).get(external_id=external_id)
    assert participant.email == "Vip.Shop@shop.example"
    replay = Client().get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert replay.status_code == 403
    assert b"already used" in replay.content
    assert Participant.objects.for_merchant(program.merchant).count() == 1


def test_a_refused_link_is_not_used_up_by_a_hostile_copy(client, program):
    """Only a link that passes every check is marked as used: a refused one leaves the shop's next link (another
    timestamp) and this one's good sibling working."""
    bad = "/" + portal_sso_url(program=program, external_id="c-99\x00", email="vip@shop.example").split("/", 3)[3]
    assert client.get(bad, HTTP_ACCEPT_LANGUAGE="en").status_code == 403
    good = "/" + portal_sso_url(program=program, external_id="c-99", email="vip@shop.example").split("/", 3)[3]
    assert client.get(good).status_code == 302
    assert Participant.objects.for_merchant(program.merchant).get().external_id == "c-99"


def test_invites_go_out_through_celery_in_the_senders_language(client, program, django_capture_on_commit_callbacks):
    participant = _join_and_sign_in(client, program)
    with mock.patch.object(celery_app, "send_task") as send_task, django_capture_on_commit_callbacks(execute=True):
        response = client.post(_base(program) + "invite/", {"emails": "a@x.pl, b@x.pl\nc@x.pl", "message": "Try it!"})
    assert response.status_code == 302
    assert Invite.objects.for_merchant(program.merchant).filter(participant=participant).count() == 3
    mail.outbox.clear()
    send_invites.run(**invite_task_kwargs(send_task))  # what the worker runs
    assert sorted(m.to[0] for m in mail.outbox) == ["a@x.pl", "b@x.pl", "c@x.pl"]
    assert "Try it!" in mail.outbox[0].body
    code = ReferralCode.objects.for_merchant(program.merchant).get(participant=participant)
    assert f"/r/{code.code}" in mail.outbox[0].body
    assert set(Invite.objects.for_merchant(program.merchant).values_list("status", flat=True)) == {"sent"}


@pytest.mark.parametrize(
    ("emails", "error"),
    [
        ("kasia@example.pl", b"cannot invite yourself"),
        (", ".join(f"f{i}@x.pl" for i in range(11)), b"At most 10"),
        ("not-an-email", b"is not an email address"),
    ],
)
def test_invite_rules(client, program, emails, error):
    _join_and_sign_in(client, program)
    response = client.post(_base(program) + "invite/", {"emails": emails}, follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert error in response.content
    assert not Invite.objects.for_merchant(program.merchant).exists()


def test_an_invite_refused_keeps_what_was_typed_and_says_what_is_wrong_next_to_the_field(client, program):
    _join_and_sign_in(client, program)
    response = client.post(
        _base(program) + "invite/",
        {"emails": "good@x.example, bad-address", "message": "Come and see"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "good@x.example, bad-address</textarea>" in html
    assert "Come and see</textarea>" in html
    assert 'aria-invalid="true" aria-describedby="id_emails_helptext id_emails_error"' in html
    assert '<p class="muted" id="id_emails_helptext">' in html  # the ids the field points at exist
    assert '<p class="field-error" id="id_emails_error" role="alert">bad-address is not an email address' in html
    assert not Invite.objects.for_merchant(program.merchant).exists()


def test_invites_have_a_daily_cap(client, program):
    participant = _join_and_sign_in(client, program)
    for batch in range(5):
        client.post(_base(program) + "invite/", {"emails": ",".join(f"f{batch}-{i}@x.pl" for i in range(10))})
    assert Invite.objects.for_merchant(program.merchant).filter(participant=participant).count() == 50
    response = client.post(
        _base(program) + "invite/", {"emails": "one-more@x.pl"}, follow=True, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert b"0 more friends today" in response.content
    assert Invite.objects.for_merchant(program.merchant).filter(participant=participant).count() == 50


def test_share_buttons_open_the_app_and_are_counted(client, program):
    _join_and_sign_in(client, program)
    whatsapp = client.post(_base(program) + "share/whatsapp/")
    assert whatsapp.status_code == 303
    assert whatsapp["Location"].startswith("https://wa.me/?text=")
    assert "utm_source%3Dwhatsapp" in whatsapp["Location"]
    assert client.post(_base(program) + "share/sms/")["Location"].startswith("sms:")
    assert client.post(_base(program) + "share/copy/").status_code == 204
    assert client.post(_base(program) + "share/native/").status_code == 204  # the phone's share sheet, once shared
    assert client.post(_base(program) + "share/myspace/").status_code == 404
    channels = ShareEvent.objects.for_merchant(program.merchant).values_list("channel", flat=True)
    assert sorted(channels) == ["copy", "native", "sms", "whatsapp"]


def test_the_phones_share_sheet_button_carries_the_link_and_the_friends_offer(client, program):
    _join_and_sign_in(client, program)
    page = client.get(_base(program)).content.decode()
    button = page[page.index("data-native-share") : page.index("</button>", page.index("data-native-share"))]
    assert '<p class="native-share" hidden>' in page  # shown by portal.js where navigator.share exists
    assert "/r/" in button
    assert 'data-text="10% off your first order"' in button or "10% off your first order" in button


def test_qr_code_downloads_as_png_and_svg(client, program):
    _join_and_sign_in(client, program)
    png = client.get(_base(program) + "qr.png?download=1")
    assert png["Content-Type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    assert "attachment" in png["Content-Disposition"]
    svg = client.get(_base(program) + "qr.svg")
    assert svg["Content-Type"] == "image/svg+xml"
    assert b"<svg" in svg.content
    assert client.get(_base(program) + "qr.gif").status_code == 404


def test_signed_out_visitors_cannot_reach_personal_pages(client, program):
    for path in ("qr.png", "my-data.json", "delete/", "share/x/"):
        response = client.get(_base(program) + path)
        assert response.status_code == 302, path
        assert response["Location"].endswith(_base(program))  # in the visitor's language


def test_download_my_data_and_delete_my_account(client, tenant, program):
    participant = _join_and_sign_in(client, program, email="leaving@example.pl", name="Lena")
    code = ReferralCode.objects.for_merchant(program.merchant).get(participant=participant)
    tenant.api.post(
        "/api/v1/conversions",
        {
            "order_id": "L1",
            "amount": "10.00",
            "currency": "PLN",
            "code": code.code,
            "customer": {"email": "buyer@x.pl"},
        },
        format="json",
    )
    data = json.loads(client.get(_base(program) + "my-data.json").content)
    assert data["profile"]["email"] == "leaving@example.pl"
    assert data["codes"][0]["code"] == code.code
    assert data["friends_purchases"] == 1

    assert client.post(_base(program) + "delete/").status_code == 200
    participant.refresh_from_db()
    assert (participant.email, participant.name, participant.status) == (None, "", "erased")
    assert client.get(f"/r/{code.code}").status_code == 404
    # The anonymous record of the sale stays, so the shop's totals do not change.
    assert tenant.api.get("/api/v1/conversions/L1").json()["attributed"] is True
    assert client.get(_base(program) + "my-data.json").status_code == 302  # signed out


def test_draft_programs_and_unknown_shops_are_404(client, program):
    program.status = "draft"
    program.save()
    assert client.get(_base(program)).status_code == 404
    assert client.get(_base(program, lang=""), follow=True).status_code == 404
    assert client.get("/p/no-shop/friends/", follow=True).status_code == 404


def test_language_comes_from_the_url_then_the_switcher_then_the_browser_then_the_program(client, program):
    base = _base(program, lang="")
    assert '<html lang="pl">' in client.get("/pl" + base).content.decode()
    assert client.get(base, HTTP_ACCEPT_LANGUAGE="ru-RU,ru;q=0.9,en;q=0.5")["Location"] == "/ru" + base
    assert client.get(base + "qr.png?download=1", HTTP_ACCEPT_LANGUAGE="de, ro;q=0.8")["Location"] == (
        "/ro" + base + "qr.png?download=1"
    )
    assert client.get(base)["Location"] == "/pl" + base  # no preference at all: the program's language
    page = client.get("/pl" + base).content.decode()
    assert f'value="/en{base}"' in page  # the switcher offers this page in English
    switched = client.post("/i18n/setlang/", {"language": "en", "next": "/en" + base})
    assert switched["Location"] == "/en" + base
    assert client.get(base, HTTP_ACCEPT_LANGUAGE="ru")["Location"] == "/en" + base  # the choice beats the browser


def test_other_pages_follow_the_browser_language(client, db):
    response = client.get("/r/UNKNOWN-CODE", HTTP_ACCEPT_LANGUAGE="ro")
    assert '<html lang="ro">' in response.content.decode()


def test_the_programs_own_texts_follow_the_page_language(client, program):
    from programs.models import ProgramText

    ProgramText.objects.for_merchant(program.merchant).create(
        program=program, language="pl", name="Poleć znajomego", referee_offer="10% zniżki na start"
    )
    polish = client.get(_base(program, lang="pl")).content.decode()
    assert "Poleć znajomego" in polish
    assert "10% zniżki na start" in polish
    assert "10% of your friend&#x27;s first order" in polish  # not translated by the merchant: the default text
    english = client.get(_base(program)).content.decode()
    assert "Bring a friend" in english
    assert "Poleć znajomego" not in english


def test_the_sign_in_email_is_in_the_pages_language_and_says_so(client, program):
    client.post(_base(program, "ru") + "join/", {"email": "olga@example.ru", "accept_terms": "on"})
    [email] = mail.outbox
    assert '<html lang="ru">' in email.alternatives[0][0]
