"""A program's install page: the snippet and server examples filled in with the merchant's program and keys, the
shop platforms first, and a checklist ticked by what really happened, step by step."""

from __future__ import annotations

import html
import uuid

import pytest
from django.conf import settings
from django.utils import timezone

from tests.rewards.helpers import order, process, rule
from tracking.models import Click

pytestmark = pytest.mark.django_db


def _page(tenant, program) -> str:
    response = tenant.admin.get(f"/admin/integrations/connection/install/{program.pk}/")
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def _ticked(page: str) -> int:
    return page.count('<li class="done">')


def test_the_install_page_fills_in_the_snippet_and_the_examples_for_this_program(tenant, program):
    page = _page(tenant, program)
    assert f'<script src="{settings.SITE_URL}/static/referral.js" data-window-days="30" defer></script>' in page
    assert f"{settings.SITE_URL}/api/v1/conversions" in page
    for language in ("curl", "Python", "PHP", "Node"):
        assert f"<h3>{language}</h3>" in page
    assert '"click_id": "<referral_click_id>"' in page
    assert f'"program": "{program.slug}"' in page  # joining from the shop names this program
    assert f"{tenant.api_key.prefix}…{tenant.api_key.last4}" in page  # the key by its name, never the secret
    assert tenant.raw_key not in page
    assert "Connect WooCommerce in one click" in page


def test_the_checklist_ticks_itself_from_real_events(tenant, program, referrer):
    page = _page(tenant, program)
    assert "Setup: 2 of 8 done" in page  # the API key exists; Anna joined (the referrer fixture)
    rule(program)
    _anna, code = referrer
    Click.objects.for_merchant(tenant.merchant).create(
        click_id=uuid.uuid4(),
        occurred_at=timezone.now(),
        program=program,
        code=code,
        participant=code.participant,
        livemode=True,
    )
    process(tenant, order(tenant, code)["id"])  # through the API: the key is used, the order is attributed
    page = _page(tenant, program)
    assert "Setup: 7 of 8 done" in page
    assert _ticked(page) == 7
    assert "Add a webhook endpoint, or connect the shop" in page  # the one left, with what to do


def test_another_merchants_program_has_no_install_page_here(tenant, other_tenant, program):
    assert other_tenant.admin.get(f"/admin/integrations/connection/install/{program.pk}/").status_code == 404


def test_the_program_list_links_to_its_install_page(tenant, program):
    listing = tenant.admin.get("/admin/programs/program/").content.decode()
    assert f"/admin/integrations/connection/install/{program.pk}/" in listing
