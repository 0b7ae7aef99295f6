"""Copy and accessibility slips a new merchant or customer trips over (issue 18, items 7-8): the slug's help text,
the translated-texts inline's heading, capitalised labels, a time-zone picker, labelled inline row fields, no empty
table headers, and in the portal no terms box to tick when there are no terms."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from programs.models import ProgramVariant

pytestmark = pytest.mark.django_db


def test_the_program_form_says_where_the_slug_goes_and_names_its_inlines_in_plain_english(tenant, program):
    ProgramVariant.objects.for_merchant(tenant.merchant).create(program=program, name="B", referrer_offer="$15")

    page = tenant.admin.get(f"/admin/programs/program/{program.pk}/change/").content.decode()

    assert "/p/(your shop)/(this slug)/" in page
    assert "/p/<shop>/<slug>/" not in page  # read by the browser as two tags: "/p///"
    assert "texts in another languages" not in page
    assert "The portal&#x27;s texts in other languages" in page or "The portal's texts in other languages" in page
    assert re.search(r'<label[^>]*for="id_currency">Currency', page)
    assert re.search(r'<label[^>]*for="id_landing_url">Landing page', page)
    # the variant row's fields name themselves (they sit under column headings, without a <label>)
    row = re.search(r'<input[^>]*name="variants-0-referrer_offer"[^>]*>', page).group(0)
    assert 'aria-label="What the referrer gets (this variant)"' in row
    assert not re.search(r"<th[^>]*>\s*</th>", page)  # no empty column heading (the inlines' first column)
    language = re.search(r'<select[^>]*name="texts-__prefix__-language"[^>]*>', page)
    assert language is not None
    assert 'aria-label="Language"' in language.group(0)


def test_the_shop_settings_pick_the_time_zone_from_a_list(tenant):
    page = tenant.admin.get(f"/admin/tenancy/shopsettings/{tenant.merchant.pk}/change/").content.decode()

    select = re.search(r'<select name="timezone"[^>]*>(.*?)</select>', page, re.S)
    assert select is not None
    assert '<option value="Europe/Warsaw"' in select.group(1)
    assert '<option value="America/New_York"' in select.group(1)


def test_the_dashboard_before_and_after_table_has_no_empty_header(tenant, program):
    from django.urls import reverse

    page = tenant.admin.get(reverse("admin:analytics_program_dashboard", args=[program.pk])).content.decode()

    assert not re.search(r"<th[^>]*>\s*</th>", page)


def _base(program) -> str:
    return f"/en/p/{program.merchant.slug}/{program.slug}/"


def test_a_program_without_terms_has_no_terms_box_to_tick_and_joins_without_it(client, program):
    assert not program.terms

    page = client.get(_base(program)).content.decode()
    joined = client.post(_base(program) + "join/", {"email": "kasia@example.pl", "name": "Kasia"})

    assert "I accept the program terms" not in page
    assert joined.status_code == 200
    assert b"Check your inbox" in joined.content
    assert mail.outbox[-1].to == ["kasia@example.pl"]


def test_a_program_with_terms_still_asks_to_accept_them(program):
    program.terms = "Rewards after 30 days."
    program.save()
    client = Client()

    page = client.get(_base(program)).content.decode()
    refused = client.post(_base(program) + "join/", {"email": "kasia@example.pl", "name": "Kasia"})

    assert "I accept the program terms" in page
    assert refused.status_code == 400
    assert not mail.outbox


def test_the_date_and_time_halves_of_a_reward_rules_offer_dates_name_themselves(tenant, program):
    page = tenant.admin.get("/admin/rewards/rewardrule/add/").content.decode()

    date = re.search(r'<input[^>]*name="valid_from_0"[^>]*>', page).group(0)
    time = re.search(r'<input[^>]*name="valid_from_1"[^>]*>', page).group(0)
    assert 'aria-label="Offer starts: Date"' in date
    assert 'aria-label="Offer starts: Time"' in time
