"""Programs in the merchant admin: create with validation, pause, end, duplicate."""

from __future__ import annotations

import pytest

from programs.models import Program, ProgramText, ProgramVariant

pytestmark = pytest.mark.django_db

VALID = {
    "name": "Spring friends",
    "slug": "spring",
    "status": "active",
    "starts_on": "2026-03-01",
    "ends_on": "2026-05-31",
    "currency": "PLN",
    "default_language": "pl",
    "landing_url": "https://shop.example/spring",
    "attribution_window_days": 30,
    "attribution_model": "first_touch",
    "new_customers_only": "on",
    "referrer_offer": "20 zł",
    "referee_offer": "10%",
    "texts-TOTAL_FORMS": 1,
    "texts-INITIAL_FORMS": 0,
    "texts-0-language": "pl",
    "texts-0-name": "Wiosenni znajomi",
    "texts-0-referee_offer": "10% zniżki",
    "variants-TOTAL_FORMS": 2,
    "variants-INITIAL_FORMS": 0,
    "variants-0-name": "A",
    "variants-0-weight": 1,
    "variants-1-name": "B",
    "variants-1-weight": 1,
}


def test_owner_creates_a_program_with_variants(tenant):
    response = tenant.admin.post("/admin/programs/program/add/", VALID)
    assert response.status_code == 302, response.content.decode()[:2000]
    program = Program.objects.for_merchant(tenant.merchant).get(slug="spring")
    assert program.currency == "PLN"
    assert set(ProgramVariant.objects.for_merchant(tenant.merchant).values_list("name", flat=True)) == {"A", "B"}
    polish = ProgramText.objects.for_merchant(tenant.merchant).get(program=program)
    assert (polish.language, polish.name) == ("pl", "Wiosenni znajomi")


def test_a_program_added_as_ended_gets_its_end_date_like_one_ended_later(tenant):
    from django.utils import timezone

    # VALID ends on 2026-05-31, before today: an end date already past is kept, as when ending from the list
    response = tenant.admin.post("/admin/programs/program/add/", {**VALID, "status": "ended", "ends_on": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    program = Program.objects.for_merchant(tenant.merchant).get(slug="spring")
    assert (program.status, program.ends_on) == ("ended", max(timezone.localdate(), program.starts_on))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ends_on": "2026-02-01"}, b"on or after the start date"),
        ({"landing_url": "ftp://shop.example/x"}, b"Enter a valid URL"),
        ({"landing_url": "javascript:alert(1)"}, b"Enter a valid URL"),
        ({"currency": "XXX"}, b"Select a valid choice"),
        ({"attribution_window_days": 0}, b"greater than or equal to 1"),
    ],
)
def test_program_validation_is_shown_on_the_form(tenant, change, message):
    response = tenant.admin.post("/admin/programs/program/add/", {**VALID, **change})
    assert response.status_code == 200
    assert message in response.content
    assert not Program.objects.for_merchant(tenant.merchant).exists()


def test_a_slug_is_unique_per_merchant_only(tenant, other_tenant):
    assert other_tenant.admin.post("/admin/programs/program/add/", VALID).status_code == 302
    assert tenant.admin.post("/admin/programs/program/add/", VALID).status_code == 302
    again = tenant.admin.post("/admin/programs/program/add/", {**VALID, "name": "Other"})
    assert b"already have a program with this slug" in again.content


def test_pause_end_and_duplicate_from_the_list(tenant, program):
    url = "/admin/programs/program/"
    tenant.admin.post(url, {"action": "pause", "_selected_action": [program.pk]})
    program.refresh_from_db()
    assert program.status == "paused"
    tenant.admin.post(url, {"action": "end", "_selected_action": [program.pk]})
    program.refresh_from_db()
    assert program.status == "ended"
    assert program.ends_on is not None
    response = tenant.admin.post(url, {"action": "activate", "_selected_action": [program.pk]}, follow=True)
    assert b"cannot be restarted" in response.content
    tenant.admin.post(url, {"action": "duplicate", "_selected_action": [program.pk]})
    copy = Program.objects.for_merchant(tenant.merchant).get(slug="friends-copy")
    assert (copy.status, copy.name) == ("draft", "Bring a friend (copy)")


def test_a_duplicate_copies_what_defines_the_program(tenant, program):
    """Variants, texts, reward rules (on the copied variant), catalog, fraud rules; pools copied empty."""
    from fraud.models import FraudSettings
    from rewards.models import CatalogItem, Coupon, CouponPool, Kind, RewardRule
    from tests.rewards.helpers import rule

    scoped = lambda model: model.objects.for_merchant(tenant.merchant)  # noqa: E731
    variant = scoped(ProgramVariant).create(program=program, name="B", weight=2)
    scoped(ProgramText).create(program=program, language="pl", name="Polecaj")
    pool = scoped(CouponPool).create(program=program, name="Spring codes")
    scoped(Coupon).create(pool=pool, code="SPRING-1")
    rule(program, name="for B", variant=variant, kind=Kind.POOL_COUPON, pool=pool)
    scoped(CatalogItem).create(program=program, name="Mug", points=100, kind=Kind.FREE_PRODUCT)
    scoped(FraudSettings).create(program=program, review_threshold=40)

    tenant.admin.post("/admin/programs/program/", {"action": "duplicate", "_selected_action": [program.pk]})

    copy = scoped(Program).get(slug="friends-copy")
    copied_variant = scoped(ProgramVariant).get(program=copy)
    assert (copied_variant.name, copied_variant.weight) == ("B", 2)
    assert scoped(ProgramText).get(program=copy).name == "Polecaj"
    copied_rule = scoped(RewardRule).get(program=copy)
    copied_pool = scoped(CouponPool).get(program=copy)
    assert (copied_rule.name, copied_rule.variant, copied_rule.pool) == ("for B", copied_variant, copied_pool)
    assert not scoped(Coupon).filter(pool=copied_pool).exists()  # codes are single-use: the copy gets its own
    assert scoped(CatalogItem).get(program=copy).name == "Mug"
    assert scoped(FraudSettings).get(program=copy).review_threshold == 40
    assert scoped(RewardRule).get(program=program).variant == variant  # the original keeps its own


@pytest.mark.django_db(transaction=True)
def test_copies_made_at_once_each_get_a_free_slug(tenant, program):
    """All four pass the "is this slug free?" look before any is stored (held there by a barrier): the losers of the
    slug constraint take the next number instead of answering 500."""
    import threading
    from unittest import mock

    from programs.services import program_duplicate
    from tests.threads import run_together

    all_checked = threading.Barrier(4)
    waited = threading.local()
    save = Program.save

    def save_after_all_checked(self, *args, **kwargs):
        if self.pk is None and not getattr(waited, "done", False):
            waited.done = True
            all_checked.wait(30)
        return save(self, *args, **kwargs)

    def duplicate(_index):
        return program_duplicate(program=Program.objects.for_merchant(tenant.merchant).get(pk=program.pk))

    with mock.patch.object(Program, "save", save_after_all_checked):
        copies, errors = run_together(4, duplicate)
    assert errors == []
    assert sorted(c.slug for c in copies) == ["friends-copy", "friends-copy-2", "friends-copy-3", "friends-copy-4"]


def test_participants_and_conversions_pages_list_this_merchants_rows(tenant, referrer):
    participant, code = referrer
    assert participant.email.encode() in tenant.admin.get("/admin/programs/participant/").content
    tenant.api.post(
        "/api/v1/conversions",
        {
            "order_id": "X1",
            "amount": "10.00",
            "currency": "PLN",
            "code": code.code,
            "customer": {"email": "f@x.example"},
        },
        format="json",
    )
    page = tenant.admin.get("/admin/tracking/conversion/?status__exact=attributed")
    assert b"X1" in page.content
    assert tenant.admin.get("/admin/tracking/referral/").status_code == 200
    assert tenant.admin.get("/admin/tracking/click/").status_code == 200


def test_setting_a_vanity_code_in_the_admin(tenant, referrer):
    _participant, code = referrer
    url = f"/admin/tracking/referralcode/{code.pk}/change/"
    assert tenant.admin.post(url, {"code": "ANNA-VIP", "status": "active"}).status_code == 302
    code.refresh_from_db()
    assert (code.code, code.is_vanity) == ("ANNA-VIP", True)
    bad = tenant.admin.post(url, {"code": "a b", "status": "active"})
    assert bad.status_code == 200
    assert b"letters, digits or dashes" in bad.content


def _erased(program, email: str):
    from programs.services import participant_erase
    from tests.factories import join

    participant, _code = join(program, email=email)
    return participant_erase(participant=participant)


@pytest.mark.parametrize("action", ["block", "unblock"])
def test_blocking_or_unblocking_an_erased_participant_is_refused_by_name_and_the_others_change(
    tenant, program, referrer, action
):
    from programs.models import Participant

    anna, _code = referrer
    if action == "unblock":
        Participant.objects.for_merchant(tenant.merchant).filter(pk=anna.pk).update(status="blocked")
    erased = _erased(program, "gone@x.example")
    url = "/admin/programs/participant/"
    response = tenant.admin.post(
        url, {"action": action, "index": "0", "_selected_action": [erased.pk, anna.pk]}, follow=True
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert f"#{erased.pk}: An erased participant cannot be blocked or unblocked." in shown
    erased.refresh_from_db()
    anna.refresh_from_db()
    assert erased.status == "erased"
    assert anna.status == ("blocked" if action == "block" else "active")


def test_the_service_refuses_to_change_an_erased_participants_status(tenant, program):
    from programs.services import participant_set_status
    from referral_saas.errors import Conflict

    erased = _erased(program, "gone@x.example")
    with pytest.raises(Conflict) as refused:
        participant_set_status(participant=erased, status="active")
    assert refused.value.code == "participant_erased"
    erased.refresh_from_db()
    assert erased.status == "erased"


def test_an_erased_participants_status_cannot_be_changed_on_its_page(tenant, program):
    erased = _erased(program, "gone@x.example")
    url = f"/admin/programs/participant/{erased.pk}/change/"
    page = tenant.admin.get(url)
    assert page.context["adminform"].form.fields["status"].disabled
    response = tenant.admin.post(url, {"status": "active", "language": "pl", "name": "", "email": ""})
    assert response.status_code == 302
    erased.refresh_from_db()
    assert erased.status == "erased"


def test_a_participants_page_offers_active_and_blocked_and_blocks_through_the_service(tenant, referrer):
    anna, _code = referrer
    url = f"/admin/programs/participant/{anna.pk}/change/"
    choices = [value for value, _label in tenant.admin.get(url).context["adminform"].form.fields["status"].choices]
    assert "erased" not in choices
    data = {"status": "blocked", "language": anna.language, "name": anna.name, "email": anna.email,
            "external_id": anna.external_id}  # fmt: skip
    assert tenant.admin.post(url, data).status_code == 302
    anna.refresh_from_db()
    assert anna.status == "blocked"


def _change_form(program, **changes) -> dict:
    """The program's change form as the admin posts it: every field as stored, then `changes`."""
    data = {
        "name": program.name,
        "slug": program.slug,
        "status": program.status,
        "starts_on": program.starts_on.isoformat(),
        "ends_on": program.ends_on.isoformat() if program.ends_on else "",
        "currency": program.currency,
        "default_language": program.default_language,
        "landing_url": program.landing_url,
        "referrer_offer": program.referrer_offer,
        "referee_offer": program.referee_offer,
        "attribution_window_days": program.attribution_window_days,
        "attribution_model": program.attribution_model,
        "texts-TOTAL_FORMS": 0,
        "texts-INITIAL_FORMS": 0,
        "variants-TOTAL_FORMS": 0,
        "variants-INITIAL_FORMS": 0,
    }
    return {**data, **changes}


def test_ending_a_program_on_its_change_form_stamps_its_end_date_and_stops_its_links(client, tenant, program, referrer):
    from django.utils import timezone

    _anna, code = referrer
    assert client.get(f"/r/{code.code}")["Location"].count("ref=") == 1  # cached as running
    url = f"/admin/programs/program/{program.pk}/change/"
    response = tenant.admin.post(url, _change_form(program, status="ended", name="Bring a friend (over)"))
    assert response.status_code == 302, response.content.decode()[:2000]
    program.refresh_from_db()
    assert (program.status, program.ends_on, program.name) == ("ended", timezone.localdate(), "Bring a friend (over)")
    assert "ref=" not in client.get(f"/r/{code.code}")["Location"]  # the cached "running" was dropped


@pytest.mark.parametrize("status", ["active", "paused", "draft"])
def test_an_ended_program_cannot_be_restarted_from_its_change_form(tenant, program, status):
    from programs.services import program_set_status

    program_set_status(program=program, status="ended")
    ended_on = program.ends_on
    url = f"/admin/programs/program/{program.pk}/change/"
    response = tenant.admin.post(url, _change_form(program, status=status, name="Again"))
    assert response.status_code == 200  # the form again, with the refusal on it
    assert b"An ended program cannot be restarted" in response.content
    program.refresh_from_db()
    assert (program.status, program.ends_on, program.name) == ("ended", ended_on, "Bring a friend")
