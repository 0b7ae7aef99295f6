"""Share counts: a share counts when the participant presses a share button (a POST), once per channel and day; a
GET of a share link (an old link, a crawler, a link prefetch, a reload) still opens the network but counts nothing."""

from __future__ import annotations

import datetime
import re
from datetime import timedelta
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone, translation
from django.utils.translation import gettext

from portal import services as portal_services
from programs.models import ShareEvent
from tests.portal.test_portal import _base, _join_and_sign_in

pytestmark = pytest.mark.django_db


def _counted(program) -> list[str]:
    return sorted(ShareEvent.objects.for_merchant(program.merchant).values_list("channel", flat=True))


def test_opening_share_links_with_a_get_opens_the_network_and_counts_nothing(client, program):
    _join_and_sign_in(client, program)
    base = _base(program)

    whatsapp = client.get(base + "share/whatsapp/")
    assert whatsapp.status_code == 302
    assert whatsapp["Location"].startswith("https://wa.me/?text=")
    assert client.head(base + "share/facebook/")["Location"].startswith("https://www.facebook.com/sharer/")
    assert client.get(base + "share/email/")["Location"].startswith("mailto:")
    assert client.get(base + "share/copy/").status_code == 204
    assert client.get(base + "share/qr/").status_code == 404  # the QR files are downloaded from qr.<format>
    png = client.get(base + "qr.png?download=1")
    assert png.status_code == 200
    assert "attachment" in png["Content-Disposition"]
    assert client.get(base + "qr.svg").status_code == 200

    assert _counted(program) == []


def test_pressing_a_share_button_counts_once_per_channel_and_day(client, program):
    _join_and_sign_in(client, program)
    base = _base(program)

    first = client.post(base + "share/whatsapp/")
    assert first.status_code == 303
    assert first["Location"].startswith("https://wa.me/?text=")
    assert _counted(program) == ["whatsapp"]

    again = client.post(base + "share/whatsapp/")  # a double click, a reload of the form, a second share today
    assert again.status_code == 303
    assert again["Location"] == first["Location"]
    assert _counted(program) == ["whatsapp"]

    assert client.post(base + "share/facebook/").status_code == 303
    assert client.post(base + "share/copy/").status_code == 204
    qr = client.post(base + "share/qr/", {"format": "svg"})
    assert qr.status_code == 303
    assert qr["Location"] == base + "qr.svg?download=1"
    assert client.post(base + "share/qr/", {"format": "png"}).status_code == 303
    assert _counted(program) == ["copy", "facebook", "qr", "whatsapp"]

    # The next day, the same buttons count again.
    yesterday = timezone.now() - timedelta(days=1)
    ShareEvent.objects.for_merchant(program.merchant).update(created_at=yesterday, day=yesterday.date())
    assert client.post(base + "share/whatsapp/").status_code == 303
    assert client.post(base + "share/qr/", {"format": "png"}).status_code == 303
    assert _counted(program) == ["copy", "facebook", "qr", "qr", "whatsapp", "whatsapp"]


def test_a_share_counts_on_the_merchants_day(client, program):
    program.merchant.timezone = "Europe/Warsaw"
    program.merchant.save(update_fields=["timezone"])
    participant = _join_and_sign_in(client, program)
    late_evening_utc = datetime.datetime(2026, 1, 10, 23, 30, tzinfo=datetime.UTC)  # 00:30 on the 11th in Warsaw
    with mock.patch.object(portal_services.timezone, "now", return_value=late_evening_utc):
        portal_services.share_record(participant=participant, program=program, channel="x")
    with mock.patch.object(portal_services.timezone, "now", return_value=late_evening_utc + timedelta(hours=1)):
        portal_services.share_record(participant=participant, program=program, channel="x")  # the same day there
    share = ShareEvent.objects.for_merchant(program.merchant).get()
    assert share.day == datetime.date(2026, 1, 11)


def test_share_buttons_are_forms_that_need_the_pages_csrf_token(client, program):
    _join_and_sign_in(client, program)
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies
    page = strict.get(_base(program)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)

    assert strict.post(_base(program) + "share/x/").status_code == 403  # a forged cross-site POST
    assert _counted(program) == []
    assert strict.post(_base(program) + "share/x/", {"csrfmiddlewaretoken": token}).status_code == 303
    assert strict.post(_base(program) + "share/copy/", {"csrfmiddlewaretoken": token}).status_code == 204
    assert _counted(program) == ["copy", "x"]


def test_signed_out_visitors_cannot_count_shares(client, program):
    response = client.post(_base(program) + "share/whatsapp/")
    assert response.status_code == 302
    assert _counted(program) == []


@pytest.mark.parametrize("lang", ["en", "pl", "ro", "ru"])
def test_the_dashboard_shows_the_share_buttons_as_labelled_forms_in_the_visitors_language(client, program, lang):
    _join_and_sign_in(client, program)
    page = client.get(_base(program, lang)).content.decode()
    base = _base(program, lang)
    with translation.override(lang):
        share_on, email, png = gettext("Share on"), gettext("Email"), gettext("Download PNG")
    assert f'<ul class="share-buttons" aria-label="{share_on}">' in page
    for channel in ("whatsapp", "facebook", "x", "linkedin", "telegram", "vk", "sms", "email"):
        form = re.search(rf'<form method="post" action="{re.escape(base)}share/{channel}/"[^>]*>(.*?)</form>', page)
        assert form, channel
        assert 'name="csrfmiddlewaretoken"' in form.group(1)
        assert re.search(rf'<button type="submit" class="share share-{channel}">[^<]+</button>', form.group(1))
    assert f'<button type="submit" class="share share-email">{email}</button>' in page
    qr_form = re.search(rf'<form method="post" action="{re.escape(base)}share/qr/"[^>]*>(.*?)</form>', page, re.S)
    assert f'name="format" value="png" class="button-secondary">{png}</button>' in qr_form.group(1)
    assert 'data-share-url="' + base + 'share/copy/"' in page
    assert "qr.png?download=1" not in page  # downloads go through the counted POST
