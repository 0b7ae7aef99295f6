"""Rewards in the merchant admin: rules with validation, reward actions, coupon pools and their CSV upload, the
catalog, the cash due and payouts, and another shop's staff seeing none of it."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from referral_saas.tenancy.models import Membership
from rewards.models import CatalogItem, Coupon, LedgerEntry, Reward, RewardEvent, RewardRule
from tests.conftest import staff_client
from tests.factories import MembershipFactory, ProgramFactory, UserFactory, coupon_pool, join, reward_for, reward_rule
from tests.rewards.helpers import act, catalog_item_form, messages_of

pytestmark = pytest.mark.django_db

RULES = "/admin/rewards/rewardrule/"
REWARDS = "/admin/rewards/reward/"
POOLS = "/admin/rewards/couponpool/"
COUPONS = "/admin/rewards/coupon/"
CATALOG = "/admin/rewards/catalogitem/"
CASH_DUE = "/admin/rewards/ledgerentry/cash-due/"


def _analyst(tenant):
    user = UserFactory()
    MembershipFactory(merchant=tenant.merchant, user=user, role=Membership.Role.ANALYST)
    return staff_client(user, tenant.merchant)


def _text(response) -> str:
    return response.content.decode()


def _csv(response) -> str:
    return b"".join(response.streaming_content).decode("utf-8-sig")


# --- reward rules -----------------------------------------------------------------------------------------------


def _rule_form(program, **changes) -> dict:
    data = {
        "name": "Ten percent",
        "program": program.pk,
        "variant": "",
        "side": "referrer",
        "trigger": "first_purchase",
        "max_purchases": "",
        "milestone": "",
        "kind": "amount_coupon",
        "value_type": "percent_of_order",
        "value": "10",
        "max_value": "50",
        "description": "",
        "pool": "",
        "coupon_prefix": "REF",
        "coupon_valid_days": "60",
        "min_order_value": "",
        "hold_days": "30",
        "cap_per_month": "",
        "cap_total": "",
        "valid_from_0": "",
        "valid_from_1": "",
        "valid_until_0": "",
        "valid_until_1": "",
        "active": "on",
    }
    data.update(changes)
    return data


def test_a_valid_rule_is_saved_and_listed_with_a_readable_summary(tenant, program):
    response = tenant.admin.post(f"{RULES}add/", _rule_form(program))
    assert response.status_code == 302, _text(response)[:3000]
    rule = RewardRule.objects.for_merchant(tenant.merchant).get(name="Ten percent")
    assert (rule.program, rule.kind, rule.value, rule.max_value) == (program, "amount_coupon", 10, 50)
    listing = _text(tenant.admin.get(RULES))
    assert "10% of the order, max 50 PLN, amount-off coupon → referrer, first purchase, hold 30 d" in listing


def test_a_free_product_rule_needs_no_value_and_a_milestone_rule_its_count(tenant, program):
    free = _rule_form(program, name="Mug", kind="free_product", value_type="fixed", value="0", max_value="",
                      description="A branded mug", trigger="milestone", milestone="5", hold_days="0")  # fmt: skip
    assert tenant.admin.post(f"{RULES}add/", free).status_code == 302
    rule = RewardRule.objects.for_merchant(tenant.merchant).get(name="Mug")
    assert rule.milestone == 5
    assert "A branded mug, free product → referrer, after 5 successful referrals, no hold" in _text(
        tenant.admin.get(RULES)
    )


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"trigger": "milestone"}, "milestone", "Enter how many successful referrals reach this milestone."),
        ({"trigger": "milestone", "milestone": "3", "side": "referee"}, "side", "Milestones reward the referrer"),
        ({"milestone": "3"}, "milestone", "A milestone is only used when the referrer reaches"),
        ({"max_purchases": "3"}, "max_purchases", "Only used with"),
        ({"kind": "pool_coupon", "value_type": "fixed", "max_value": ""}, "pool", "Choose the coupon pool"),
        ({"kind": "percent_coupon", "value_type": "fixed", "value": "150", "max_value": ""}, "value",
         "A percent-off coupon is between 0 and 100 (%)."),
        ({"kind": "percent_coupon"}, "value_type", "A percentage of the order works for amount-off coupons"),
        ({"kind": "free_product", "description": "Mug"}, "value_type", "A percentage of the order works for"),
        ({"value": "0"}, "value", "Enter a value greater than zero."),
        ({"value": "120"}, "value", "A percentage of the order is at most 100."),
        ({"value_type": "fixed"}, "max_value", "caps a percentage of the order"),
        ({"kind": "custom", "value_type": "fixed", "max_value": "", "value": "0"}, "description",
         "Describe the product or experience"),
        ({"valid_from_0": "2026-06-01", "valid_from_1": "00:00", "valid_until_0": "2026-05-01",
          "valid_until_1": "00:00"}, "valid_until", "The offer must end after it starts."),
        ({"coupon_valid_days": "0"}, "coupon_valid_days", "A coupon is valid for at least 1 day"),
        ({"coupon_prefix": "MY CODE"}, "coupon_prefix", "Letters, digits and dashes only"),
        ({"trigger": "milestone", "milestone": "3"}, "value_type", "A sign-up or a milestone has no order to take"),
        ({"trigger": "signup"}, "value_type", "A sign-up or a milestone has no order to take"),
        ({"kind": "points", "value_type": "fixed", "max_value": "", "value": "10.5"}, "value",
         "Points are whole numbers."),
        ({"kind": "points", "max_value": "50.5"}, "max_value", "Points are whole numbers."),
    ],
)  # fmt: skip
def test_rule_validation_is_shown_next_to_the_field(tenant, program, changes, field, message):
    response = tenant.admin.post(f"{RULES}add/", _rule_form(program, **changes))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert any(message in str(e) for e in errors.get(field, [])), errors
    assert not RewardRule.objects.for_merchant(tenant.merchant).exists()


def test_pool_and_variant_must_belong_to_the_rules_program(tenant, program):
    other_program = ProgramFactory(merchant=tenant.merchant)
    pool = coupon_pool(other_program)
    variant = other_program.variants.create(merchant=tenant.merchant, name="B", weight=1)
    data = _rule_form(program, kind="pool_coupon", value_type="fixed", max_value="", pool=pool.pk, variant=variant.pk)
    errors = tenant.admin.post(f"{RULES}add/", data).context["adminform"].form.errors
    assert "This pool belongs to another program" in str(errors["pool"])
    assert "This variant belongs to another program" in str(errors["variant"])


def test_amounts_of_a_yen_program_are_whole_yen(tenant, program):
    program.currency = "JPY"
    program.save(update_fields=["currency"])
    for field, changes in [
        ("max_value", {"max_value": "99.50"}),
        ("value", {"value_type": "fixed", "max_value": "", "value": "500.50"}),
        ("min_order_value", {"min_order_value": "1000.5"}),
    ]:
        response = tenant.admin.post(f"{RULES}add/", _rule_form(program, **changes))
        assert "JPY has 0 decimal places." in str(response.context["adminform"].form.errors[field])
    assert tenant.admin.post(f"{RULES}add/", _rule_form(program, max_value="99")).status_code == 302


def test_rule_choices_never_offer_another_shops_program_or_pool(tenant, other_tenant, program):
    theirs = ProgramFactory(merchant=other_tenant.merchant, name="Their secret program")
    their_pool = coupon_pool(theirs, name="Their pool")
    page = _text(tenant.admin.get(f"{RULES}add/"))
    assert "Their secret program" not in page
    assert "Their pool" not in page
    response = tenant.admin.post(f"{RULES}add/", _rule_form(theirs))
    assert "Select a valid choice" in str(response.context["adminform"].form.errors["program"])
    data = _rule_form(program, kind="pool_coupon", value_type="fixed", max_value="", pool=their_pool.pk)
    assert "Select a valid choice" in str(tenant.admin.post(f"{RULES}add/", data).context["adminform"].form.errors)


def test_the_pool_choices_of_rules_and_catalog_items_name_their_program(tenant, program):
    coupon_pool(program, name="15% codes")
    for url in (f"{RULES}add/", "/admin/rewards/catalogitem/add/"):
        assert f"{program.name}: 15% codes" in _text(tenant.admin.get(url))


def test_a_rule_name_is_unique_within_its_program(tenant, program):
    reward_rule(program, name="Ten percent")
    response = tenant.admin.post(f"{RULES}add/", _rule_form(program))
    assert response.status_code == 200
    assert "already has one with this name" in str(response.context["adminform"].form.errors["name"])


# --- rewards: list, search, actions -----------------------------------------------------------------------------


@pytest.fixture
def anna(referrer):
    return referrer[0]


def test_reward_list_shows_value_status_and_finds_by_code_email_and_order(tenant, program, anna):
    reward = reward_for(anna, reward_rule(program), coupon_code="REF-FINDME")
    other = reward_for(join(program, email="zed@people.example")[0], reward_rule(program))
    page = _text(tenant.admin.get(REWARDS))
    assert "12.99 PLN" in page
    assert "Pending" in page
    for query in ("REF-FINDME", "anna.kowalska@gmail.com"):
        found = _text(tenant.admin.get(REWARDS, {"q": query}))
        assert f"{REWARDS}{reward.pk}/change/" in found
        assert f"{REWARDS}{other.pk}/change/" not in found
    flagged = _text(tenant.admin.get(REWARDS, {"flag__exact": "pool_empty"}))
    assert f"{REWARDS}{reward.pk}/change/" not in flagged


def test_reward_page_is_read_only_and_shows_the_audit_trail(tenant, program, anna):
    reward = reward_for(anna, reward_rule(program))
    page = tenant.admin.get(f"{REWARDS}{reward.pk}/change/")
    assert page.status_code == 200
    assert "system:test" in _text(page)  # the first audit line
    assert 'name="_save"' not in _text(page)
    assert tenant.admin.post(f"{REWARDS}{reward.pk}/change/", {"status": "issued"}).status_code == 403
    reward.refresh_from_db()
    assert reward.status == "pending"


def test_release_now_issues_a_coupon_at_once(tenant, program, anna):
    reward = reward_for(anna, reward_rule(program, coupon_prefix="ANNA", coupon_valid_days=30))
    response = act(tenant.admin, "release_now", [reward])
    assert "1 reward issued." in messages_of(response)
    reward.refresh_from_db()
    assert reward.status == "issued"
    assert reward.coupon_code.startswith("ANNA-")
    assert reward.expires_at is not None
    events = RewardEvent.objects.for_merchant(tenant.merchant).filter(reward=reward)
    actors = list(events.values_list("actor", "to_status"))
    assert actors[-2:] == [(f"user:{tenant.owner.email}", "approved"), (f"user:{tenant.owner.email}", "issued")]


def test_release_now_of_a_pool_reward_with_an_empty_pool_says_so(tenant, program, anna):
    pool = coupon_pool(program)
    reward = reward_for(anna, reward_rule(program, kind="pool_coupon", value_type="fixed", max_value=None, pool=pool))
    response = act(tenant.admin, "release_now", [reward])
    assert any("coupon pool is empty" in m for m in messages_of(response))
    reward.refresh_from_db()
    assert (reward.status, reward.flag) == ("approved", "pool_empty")
    assert f"{REWARDS}{reward.pk}/change/" in _text(tenant.admin.get(REWARDS, {"flag__exact": "pool_empty"}))


def test_release_now_of_a_cash_reward_puts_it_in_the_cash_due(tenant, program, anna):
    rule = reward_rule(program, kind="cash", value_type="fixed", value=Decimal("25"), max_value=None)
    reward = reward_for(anna, rule, value=Decimal("25.00"))
    act(tenant.admin, "release_now", [reward])
    entry = LedgerEntry.objects.for_merchant(tenant.merchant).get(reward=reward)
    assert (entry.account, entry.kind, entry.amount) == ("cash", "earned", Decimal("25.00"))


def test_void_asks_for_a_reason_and_records_it_in_the_audit_trail(tenant, program, anna):
    reward = reward_for(anna, reward_rule(program))
    confirm = act(tenant.admin, "void", [reward])
    assert confirm.status_code == 200
    assert 'name="reason"' in _text(confirm)
    assert Reward.objects.for_merchant(tenant.merchant).get(pk=reward.pk).status == "pending"

    missing = act(tenant.admin, "void", [reward], apply="yes", reason="")
    assert "This field is required." in _text(missing)
    assert Reward.objects.for_merchant(tenant.merchant).get(pk=reward.pk).status == "pending"

    done = act(tenant.admin, "void", [reward], apply="yes", reason="Test order by our own staff")
    assert "1 reward is now voided." in messages_of(done)
    reward.refresh_from_db()
    assert (reward.status, reward.reason) == ("voided", "Test order by our own staff")
    event = RewardEvent.objects.for_merchant(tenant.merchant).filter(reward=reward).latest("at")
    assert (event.from_status, event.to_status, event.actor, event.reason) == (
        "pending",
        "voided",
        f"user:{tenant.owner.email}",
        "Test order by our own staff",
    )


def test_an_illegal_move_is_an_error_message_not_a_server_error(tenant, program, anna):
    voided = reward_for(anna, reward_rule(program), status="voided")
    response = act(tenant.admin, "reject", [voided], apply="yes", reason="Fraud")
    assert response.status_code == 200
    assert any("cannot become rejected" in m for m in messages_of(response))
    released = act(tenant.admin, "release_now", [voided])
    assert any("only pending or approved rewards can be released" in m for m in messages_of(released))
    voided.refresh_from_db()
    assert voided.status == "voided"


def test_voiding_an_issued_points_reward_is_refused_as_the_points_are_in_the_balance(tenant, program, anna):
    rule = reward_rule(program, kind="points", value_type="fixed", value=Decimal("100"), max_value=None)
    reward = reward_for(anna, rule)
    act(tenant.admin, "release_now", [reward])
    response = act(tenant.admin, "void", [reward], apply="yes", reason="Changed my mind")
    assert any("already in the customer's balance" in m for m in messages_of(response))
    reward.refresh_from_db()
    assert reward.status == "issued"


def test_an_analyst_sees_rewards_but_cannot_run_the_actions(tenant, program, anna):
    reward = reward_for(anna, reward_rule(program))
    analyst = _analyst(tenant)
    page = _text(analyst.get(REWARDS))
    assert f"{REWARDS}{reward.pk}/change/" in page
    assert 'value="release_now"' not in page
    assert 'value="void"' not in page
    for action in ("release_now", "void", "reject"):
        response = act(analyst, action, [reward], apply="yes", reason="x")
        assert response.status_code == 200
    reward.refresh_from_db()
    assert reward.status == "pending"
    assert not RewardEvent.objects.for_merchant(tenant.merchant).filter(reward=reward, actor__startswith="user:")


def test_export_csv_streams_the_selected_rewards_and_the_filtered_list(tenant, program, anna):
    reward = reward_for(anna, reward_rule(program), coupon_code="REF-EXPORT")
    reward_for(join(program, email="zed@people.example")[0], reward_rule(program), status="voided")
    response = tenant.admin.post(REWARDS, {"action": "export_selected_csv", "_selected_action": [reward.pk]})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(_csv(response))))
    assert [(r["id"], r["participant_email"], r["value"], r["coupon_code"], r["status"]) for r in rows] == [
        (str(reward.pk), "anna.kowalska@gmail.com", "12.99", "REF-EXPORT", "pending")
    ]
    page = _text(tenant.admin.get(REWARDS, {"status__exact": "pending"}))
    assert "/admin/rewards/reward/export.csv?status__exact=pending" in page
    filtered = tenant.admin.get(f"{REWARDS}export.csv", {"status__exact": "pending"})
    assert [r["coupon_code"] for r in csv.DictReader(io.StringIO(_csv(filtered)))] == ["REF-EXPORT"]


# --- coupon pools -----------------------------------------------------------------------------------------------


def _upload(client, pool, content: bytes, name="codes.csv"):
    url = f"{POOLS}{pool.pk}/upload/"
    return client.post(url, {"file": SimpleUploadedFile(name, content, content_type="text/csv")}, follow=True)


def test_uploading_codes_adds_new_ones_and_skips_duplicates(tenant, program):
    pool = coupon_pool(program, name="Spring 15%", codes=["SPRING-1"])
    page = tenant.admin.get(f"{POOLS}{pool.pk}/upload/")
    assert page.status_code == 200
    assert "1 free code" in _text(page)
    response = _upload(tenant.admin, pool, b"code\nSPRING-1\nSPRING-2\nSPRING-3\nSPRING-2\n")
    assert "Added 2, skipped 2 duplicates." in messages_of(response)
    codes = set(Coupon.objects.for_merchant(tenant.merchant).filter(pool=pool).values_list("code", flat=True))
    assert codes == {"SPRING-1", "SPRING-2", "SPRING-3"}
    listing = tenant.admin.get(POOLS)
    row = next(p for p in listing.context["cl"].result_list if p.pk == pool.pk)
    assert (row.free_count, row.assigned_count) == (3, 0)
    assert "Upload codes (CSV)" in _text(tenant.admin.get(f"{POOLS}{pool.pk}/change/"))


def test_uploaded_codes_are_taken_by_a_reward_and_the_list_counts_them(tenant, program, anna):
    pool = coupon_pool(program, codes=["ONLY-ONE"])
    reward = reward_for(anna, reward_rule(program, kind="pool_coupon", value_type="fixed", max_value=None, pool=pool))
    act(tenant.admin, "release_now", [reward])
    reward.refresh_from_db()
    assert (reward.status, reward.coupon_code) == ("issued", "ONLY-ONE")
    row = next(p for p in tenant.admin.get(POOLS).context["cl"].result_list if p.pk == pool.pk)
    assert (row.free_count, row.assigned_count) == (0, 1)
    coupon = Coupon.objects.for_merchant(tenant.merchant).get(code="ONLY-ONE")
    assigned = _text(tenant.admin.get(COUPONS, {"reward__isempty": "0"}))
    free = _text(tenant.admin.get(COUPONS, {"reward__isempty": "1"}))
    assert f"{COUPONS}{coupon.pk}/change/" in assigned
    assert f"{COUPONS}{coupon.pk}/change/" not in free
    assert f"{COUPONS}{coupon.pk}/change/" in _text(tenant.admin.get(COUPONS, {"q": "ONLY-ONE"}))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe\x00bad", "The file must be UTF-8 text (CSV)."),
        (b"code\n", "The file has no codes."),
        (b"GOOD-1\nnot a code\n", "Line 2: not a coupon code: not a code"),
        (b"", "The submitted file is empty."),
        (b"A\x00B\n", "The file must be UTF-8 text (CSV)."),  # a NUL: binary (PostgreSQL cannot store one)
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "The file must be UTF-8 text (CSV)."),
        ("code\nA-1\n".encode("utf-16"), "The file must be UTF-8 text (CSV)."),
        (b"\xef\xbb\xbfcode\r\n", "The file has no codes."),  # only a header, after a BOM
        (b"code\nGOOD-1\nA\x01B\n", "Line 3: not a coupon code: A\\x01B"),
        (b"GOOD-1\nZERO\xe2\x80\x8bWIDTH\n", "Line 2: not a coupon code: ZERO\\u200bWIDTH"),
        (b"GOOD-1\nNO\xc2\xa0BREAK\n", "Line 2: not a coupon code: NO\\xa0BREAK"),
        (b"GOOD-1\n" + b"X" * 65 + b"\n", "Line 2: not a coupon code: " + "X" * 65),
        (b"code\nGOOD-1\n" + b"Y" * 300_000 + b"\n", "Line 3: not a coupon code: " + "Y" * 70),
        (b'GOOD-1\n"OPEN\nQUOTE\n', "Line 2: not a coupon code: OPEN\\nQUOTE"),  # an unclosed quote
    ],
)
def test_a_bad_codes_file_is_refused_on_the_form(tenant, program, content, message):
    pool = coupon_pool(program)
    response = _upload(tenant.admin, pool, content)
    assert response.status_code == 200
    assert message in str(response.context["form"].errors["file"])
    assert not Coupon.objects.for_merchant(tenant.merchant).filter(pool=pool).exists()


@pytest.mark.parametrize(
    "content",
    [
        b"code\r\nA-1\rB-2\n",  # a lone CR ends a line too (Excel for Mac's CSV)
        b"A-1\rB-2\r",
        b"\xef\xbb\xbfcode\r\nA-1\r\nB-2\r\nA-1\r\n",  # a BOM, Windows line ends, a duplicate
        b'code,note\n"A-1",first\nB-2\n',
    ],
)
def test_codes_files_from_any_spreadsheet_are_read(tenant, program, content):
    pool = coupon_pool(program)
    response = _upload(tenant.admin, pool, content)
    assert response.status_code == 200
    assert any(message.startswith("Added 2, skipped") for message in messages_of(response))
    codes = set(Coupon.objects.for_merchant(tenant.merchant).filter(pool=pool).values_list("code", flat=True))
    assert codes == {"A-1", "B-2"}


def test_an_analyst_cannot_upload_codes(tenant, program):
    pool = coupon_pool(program)
    analyst = _analyst(tenant)
    assert analyst.get(f"{POOLS}{pool.pk}/upload/").status_code == 403
    assert _upload(analyst, pool, b"X-1\n").status_code == 403
    assert not Coupon.objects.for_merchant(tenant.merchant).exists()


# --- catalog ----------------------------------------------------------------------------------------------------


def test_a_catalog_item_is_saved_and_listed(tenant, program):
    assert tenant.admin.post(f"{CATALOG}add/", catalog_item_form(program)).status_code == 302
    item = CatalogItem.objects.for_merchant(tenant.merchant).get()
    assert (item.points, item.value) == (500, 20)
    assert "20 PLN, amount-off coupon" in _text(tenant.admin.get(CATALOG))


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"kind": "pool_coupon", "value": "0"}, "pool", "Choose the coupon pool"),
        ({"kind": "percent_coupon", "value": "101"}, "value", "between 0 and 100"),
        ({"value": "0"}, "value", "greater than zero"),
        ({"points": "0"}, "points", "greater than or equal to 1"),
        ({"kind": "free_product", "value": "0"}, "description", "Describe the product"),
        ({"kind": "points"}, "kind", "Select a valid choice"),
    ],
)
def test_catalog_item_validation(tenant, program, changes, field, message):
    response = tenant.admin.post(f"{CATALOG}add/", catalog_item_form(program, **changes))
    assert response.status_code == 200
    assert message in str(response.context["adminform"].form.errors[field])
    assert not CatalogItem.objects.for_merchant(tenant.merchant).exists()


# --- cash due and payouts ---------------------------------------------------------------------------------------


def _cash(participant, program, amount: str, kind="earned"):
    return LedgerEntry.objects.for_merchant(participant.merchant).create(
        program=program,
        participant=participant,
        account="cash",
        kind=kind,
        amount=Decimal(amount),
        currency=program.currency,
    )


@pytest.fixture
def owed(program, anna):
    """Anna is owed 40 PLN; Bob ("=HYPERLINK(...)" as his name) 15 PLN; Cleo was paid in full."""
    bob = join(program, email="bob@people.example", external_id="c-7", name='=HYPERLINK("http://x","y")')[0]
    cleo = join(program, email="cleo@people.example", name="Cleo")[0]
    _cash(anna, program, "25.00")
    _cash(anna, program, "15.00")
    _cash(bob, program, "15.00")
    _cash(cleo, program, "10.00")
    _cash(cleo, program, "-10.00", kind="payout")
    return anna, bob, cleo


def test_cash_due_lists_what_each_person_is_owed(tenant, owed):
    anna, bob, _cleo = owed
    page = tenant.admin.get(CASH_DUE)
    assert page.status_code == 200
    assert [(r["participant_id"], r["due"]) for r in page.context["rows"]] == [
        (anna.pk, Decimal("40.00")),
        (bob.pk, Decimal("15.00")),
    ]
    assert "55.00 PLN" in _text(page)
    assert f"/admin/rewards/ledgerentry/cash-due/{anna.pk}/payout/?currency=PLN" in _text(page)
    ledger = _text(tenant.admin.get("/admin/rewards/ledgerentry/"))
    assert 'href="/admin/rewards/ledgerentry/cash-due/"' in ledger
    assert 'href="/admin/rewards/ledgerentry/export.csv"' in ledger


def test_cash_due_downloads_as_csv_without_spreadsheet_formulas(tenant, owed):
    anna, bob, _cleo = owed
    response = tenant.admin.get(CASH_DUE, {"format": "csv"})
    assert response["Content-Disposition"].startswith('attachment; filename="cash-due-')
    rows = list(csv.reader(io.StringIO(_csv(response))))
    assert rows == [
        ["participant_id", "external_id", "email", "name", "currency", "amount_due"],
        [str(anna.pk), "c-42", "anna.kowalska@gmail.com", "Anna Kowalska", "PLN", "40.00"],
        [str(bob.pk), "c-7", "bob@people.example", '\'=HYPERLINK("http://x","y")', "PLN", "15.00"],
    ]


def test_cash_exports_quote_every_field_and_keep_negative_amounts_numbers(tenant, owed):
    """A payout is -10.00 in the ledger: a number we wrote, kept readable as one; people's text is defused."""
    due = _csv(tenant.admin.get(CASH_DUE, {"format": "csv"}))
    ledger = _csv(tenant.admin.get("/admin/rewards/ledgerentry/export.csv"))

    for text in (due, ledger):
        assert all(line.startswith('"') and line.endswith('"') for line in text.splitlines())
    assert '"\'=HYPERLINK(""http://x"",""y"")"' in due
    assert '"-10.00","PLN"' in ledger
    assert "'-10.00" not in ledger


def test_recording_a_payout_lowers_what_is_due(tenant, program, owed):
    anna = owed[0]
    url = f"/admin/rewards/ledgerentry/cash-due/{anna.pk}/payout/?currency=PLN"
    form = tenant.admin.get(url)
    assert form.status_code == 200
    assert form.context["form"].initial["amount"] == Decimal("40.00")
    too_much = tenant.admin.post(url, {"program": program.pk, "amount": "40.01", "note": ""})
    assert "more than the 40.00 PLN due" in str(too_much.context["form"].errors["amount"])
    too_precise = tenant.admin.post(url, {"program": program.pk, "amount": "0.001", "note": ""})
    assert too_precise.context["form"].errors["amount"]

    done = tenant.admin.post(url, {"program": program.pk, "amount": "30.00", "note": "Transfer 42"}, follow=True)
    assert "Recorded a payout of 30.00 PLN to Anna Kowalska." in messages_of(done)
    payout = LedgerEntry.objects.for_merchant(tenant.merchant).get(kind="payout", participant=anna)
    assert (payout.amount, payout.note, payout.created_by) == (Decimal("-30.00"), "Transfer 42", tenant.owner)
    dues = {r["participant_id"]: r["due"] for r in tenant.admin.get(CASH_DUE).context["rows"]}
    assert dues[anna.pk] == Decimal("10.00")


@pytest.mark.parametrize("currency", ["PL%00N", "%00", "XYZ", "pln", "PLN%00"])
def test_a_payout_page_for_no_currency_is_not_found(tenant, program, owed, currency):
    url = f"/admin/rewards/ledgerentry/cash-due/{owed[0].pk}/payout/?currency={currency}"
    payouts = LedgerEntry.objects.for_merchant(tenant.merchant).filter(kind="payout")
    before = payouts.count()
    assert tenant.admin.get(url).status_code == 404
    assert tenant.admin.post(url, {"program": program.pk, "amount": "5.00"}).status_code == 404
    assert payouts.count() == before


def test_an_analyst_sees_the_cash_due_but_cannot_record_payouts(tenant, program, owed):
    anna = owed[0]
    analyst = _analyst(tenant)
    page = analyst.get(CASH_DUE)
    assert page.status_code == 200
    assert "Record payout" not in _text(page)
    url = f"/admin/rewards/ledgerentry/cash-due/{anna.pk}/payout/?currency=PLN"
    assert analyst.get(url).status_code == 403
    assert analyst.post(url, {"program": program.pk, "amount": "5.00"}).status_code == 403
    assert not LedgerEntry.objects.for_merchant(tenant.merchant).filter(participant=anna, kind="payout").exists()


# --- another shop -----------------------------------------------------------------------------------------------


def test_another_shop_gets_404_on_every_custom_page(tenant, other_tenant, program, owed):
    anna = owed[0]
    pool = coupon_pool(program, codes=["MINE-1"])
    payout = f"/admin/rewards/ledgerentry/cash-due/{anna.pk}/payout/?currency=PLN"
    assert other_tenant.admin.get(f"{POOLS}{pool.pk}/upload/").status_code == 404
    assert _upload(other_tenant.admin, pool, b"THEIRS-1\n").status_code == 404
    assert other_tenant.admin.get(payout).status_code == 404
    assert other_tenant.admin.post(payout, {"program": program.pk, "amount": "5.00"}).status_code == 404
    assert other_tenant.admin.get(CASH_DUE, {"program": program.pk}).status_code == 404
    theirs = other_tenant.admin.get(CASH_DUE)
    assert theirs.context["rows"] == []
    assert "anna.kowalska" not in _text(theirs)
    their_csv = other_tenant.admin.get(CASH_DUE, {"format": "csv"})
    assert "anna.kowalska" not in _csv(their_csv)
    assert "anna.kowalska" in _csv(tenant.admin.get("/admin/rewards/ledgerentry/export.csv"))  # control
    assert "anna.kowalska" not in _csv(other_tenant.admin.get("/admin/rewards/ledgerentry/export.csv"))
    assert set(Coupon.objects.for_merchant(tenant.merchant).values_list("code", flat=True)) == {"MINE-1"}
    assert not LedgerEntry.objects.for_merchant(tenant.merchant).filter(kind="payout", participant=anna).exists()


def test_another_shop_cannot_act_on_or_export_my_rewards(tenant, other_tenant, program, anna):
    reward = reward_for(anna, reward_rule(program), coupon_code="REF-SECRET")
    for action in ("release_now", "void", "reject"):
        act(other_tenant.admin, action, [reward], apply="yes", reason="x")
    reward.refresh_from_db()
    assert reward.status == "pending"
    exported = other_tenant.admin.post(REWARDS, {"action": "export_selected_csv", "_selected_action": [reward.pk]})
    body = _csv(exported) if exported.streaming else _text(exported)
    assert "REF-SECRET" not in body
    assert "REF-SECRET" not in _csv(other_tenant.admin.get(f"{REWARDS}export.csv"))


def test_the_orders_list_filters_orders_by_a_reward_in_good_standing(tenant, other_tenant, program, anna):
    from tests.factories import _conversion

    paid, voided, unpaid = (_conversion(tenant.merchant) for _ in range(3))
    reward_for(anna, reward_rule(program), conversion=paid)
    reward_for(anna, reward_rule(program), conversion=paid, side="referee")  # two rewards, still one order
    reward_for(anna, reward_rule(program), conversion=voided, status=Reward.Status.VOIDED)
    elsewhere = _conversion(other_tenant.merchant)
    other_rule = reward_rule(ProgramFactory(merchant=other_tenant.merchant))
    other_person = join(other_rule.program, email="zoe@people.example")[0]
    reward_for(other_person, other_rule, conversion=elsewhere)

    def listed(value):
        changelist = tenant.admin.get("/admin/tracking/conversion/", {"rewarded": value}).context["cl"]
        return sorted(changelist.queryset.values_list("pk", flat=True))

    assert listed("yes") == [paid.pk]
    assert listed("no") == sorted([voided.pk, unpaid.pk])
    assert elsewhere.pk not in listed("")


def test_admin_amounts_have_the_currencys_decimals(tenant):
    from decimal import Decimal as D

    from fraud.services import conversion_assess
    from tracking.services import conversion_record

    program = ProgramFactory(merchant=tenant.merchant, slug="jp", currency="JPY")
    participant, code = join(program, email="aiko@people.example", external_id="a-1")
    conversion = conversion_record(
        merchant=tenant.merchant, livemode=True, order_id="order-jp", amount=D("5000"), currency="JPY",
        customer_email="buyer@mailinator.com", code=code.code,
    )[0]  # fmt: skip
    conversion_assess(conversion=conversion)
    LedgerEntry.objects.for_merchant(tenant.merchant).create(
        program=program, participant=participant, account=LedgerEntry.Account.CASH, kind=LedgerEntry.Kind.ADJUSTMENT,
        amount=D("2500"), currency="JPY",
    )  # fmt: skip

    queue = _text(tenant.admin.get("/admin/fraud/fraudassessment/"))
    due = _text(tenant.admin.get(CASH_DUE))
    ledger = _text(tenant.admin.get("/admin/rewards/ledgerentry/"))

    assert "order-jp · 5,000 JPY" in queue
    assert "<strong>2,500 JPY</strong>" in due
    assert "+2,500 JPY" in ledger
    assert "5000.00" not in queue
    assert "2500.00" not in due + ledger


def test_cash_due_of_one_program_shows_what_its_earners_are_owed_in_all(tenant, program, anna):
    second = ProgramFactory(merchant=tenant.merchant, slug="second", currency=program.currency)
    _cash(anna, program, "10.00")
    _cash(anna, second, "10.00")
    _cash(anna, program, "-20.00", kind="payout")  # one transfer settled both

    for query in ({}, {"program": program.pk}, {"program": second.pk}):
        assert tenant.admin.get(CASH_DUE, query).context["rows"] == []


def test_a_yen_payout_is_in_whole_yen(tenant, anna):
    yen = ProgramFactory(merchant=tenant.merchant, slug="jp", currency="JPY")
    _cash(anna, yen, "1299")
    form = tenant.admin.get(f"/admin/rewards/ledgerentry/cash-due/{anna.pk}/payout/?currency=JPY")
    html = _text(form)
    assert "At most 1,299 JPY." in html
    assert 'step="1"' in html
    assert 'value="1299"' in html


def test_release_now_of_a_reward_whose_referral_was_rejected_says_why(tenant, program, referrer):
    from tests.rewards.helpers import order, process
    from tests.rewards.helpers import rule as make_rule
    from tracking.models import Referral

    make_rule(program)
    process(tenant, order(tenant, referrer[1])["id"])
    reward = Reward.objects.for_merchant(tenant.merchant).get()
    Referral.objects.for_merchant(tenant.merchant).update(status="rejected", rejection_reason="fraud")

    response = act(tenant.admin, "release_now", [reward])

    assert any("was not released: The referral was rejected." in m for m in messages_of(response))
