"""A paused, ended or not yet started program's portal says so on every page and stops inviting (issue 18, item 6):
no join form, no share buttons or invite form, and the share and invite doors refuse even when posted to directly."""

from __future__ import annotations

import datetime
import re

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from programs.models import Invite, Participant, Program, ShareEvent

pytestmark = pytest.mark.django_db


def _base(program, lang: str = "en") -> str:
    return f"/{lang}/p/{program.merchant.slug}/{program.slug}/"


def _signed_in(program, email="kasia@example.pl") -> Client:
    client = Client()
    client.post(_base(program) + "join/", {"email": email, "name": "Kasia", "accept_terms": "on"})
    link = re.search(r"https?://[^/\s]+(/\S+/sign-in/\S+/)", mail.outbox[-1].body).group(1)
    assert client.post(link).status_code == 302
    return client


def _set(program, **fields):
    Program.objects.for_merchant(program.merchant).filter(pk=program.pk).update(**fields)
    program.refresh_from_db()


def test_a_running_program_has_no_banner(client, program):
    page = client.get(_base(program)).content.decode()
    assert 'data-testid="program-closed"' not in page
    assert 'name="email"' in page


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"status": Program.Status.PAUSED}, "This program is paused"),
        ({"status": Program.Status.ENDED}, "This program has ended"),
        ({"ends_on": timezone.localdate() - datetime.timedelta(days=2)}, "This program has ended"),
        ({"starts_on": timezone.localdate() + datetime.timedelta(days=5)}, "This program has not started yet"),
    ],
    ids=["paused", "ended", "past its end date", "not started"],
)
def test_the_landing_page_of_a_program_not_running_shows_a_banner_and_no_join_form(client, program, fields, words):
    _set(program, **fields)

    page = client.get(_base(program)).content.decode()

    assert 'data-testid="program-closed"' in page
    assert words in page
    assert 'name="email"' not in page
    assert "10% off your first order" not in page  # no offer it would not pay


def test_a_participant_of_a_paused_program_sees_the_banner_and_their_results_but_no_way_to_invite(program):
    client = _signed_in(program)
    _set(program, status=Program.Status.PAUSED)

    page = client.get(_base(program)).content.decode()

    assert "This program is paused" in page
    assert "Your results" in page
    assert "share/whatsapp/" not in page
    assert 'name="emails"' not in page
    assert "qr.svg" not in page


def test_the_share_and_invite_doors_of_a_paused_program_refuse_and_count_nothing(program):
    client = _signed_in(program)
    _set(program, status=Program.Status.PAUSED)
    mail.outbox.clear()

    shared = client.post(_base(program) + "share/whatsapp/")
    invited = client.post(_base(program) + "invite/", {"emails": "friend@example.pl"}, follow=True)

    assert shared.status_code == 302
    assert "wa.me" not in shared["Location"]
    assert ShareEvent.objects.for_merchant(program.merchant).count() == 0
    assert Invite.objects.for_merchant(program.merchant).count() == 0
    assert "This program is paused" in invited.content.decode()


def test_the_invite_service_refuses_a_program_that_is_not_running(program):
    from portal.services import invites_send
    from referral_saas.errors import Unprocessable

    _signed_in(program)
    participant = Participant.objects.for_merchant(program.merchant).get(email="kasia@example.pl")
    _set(program, status=Program.Status.ENDED)

    with pytest.raises(Unprocessable):
        invites_send(participant=participant, program=program, emails=["friend@example.pl"], message="")


def test_the_banner_is_translated(client, program):
    _set(program, status=Program.Status.PAUSED)

    page = client.get(_base(program, "pl")).content.decode()

    assert "Ten program jest wstrzymany" in page
