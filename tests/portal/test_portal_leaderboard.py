"""The portal leaderboard: only for programs that opt in, first name and initial only, the participant's rank and
milestone progress; blocked referrers are left out."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from analytics.services import rollup_incremental
from programs.models import Participant
from rewards.models import RewardRule, Work
from tests.factories import ProgramFactory, join
from tracking.models import Conversion, Referral

pytestmark = pytest.mark.django_db


def _friends_bought(code, count: int, signups_only: int = 0) -> None:
    merchant = code.merchant
    now = timezone.now()
    for n in range(count + signups_only):
        email = f"{uuid.uuid4().hex[:8]}@friends.example"
        bought = n < count
        referral = Referral.all_merchants.create(
            merchant=merchant, program=code.program, referrer=code.participant, code=code, referee_email=email,
            referee_email_normalized=email, status="converted" if bought else "signed_up", touched_at=now,
            signed_up_at=now, converted_at=now if bought else None,
        )  # fmt: skip
        if bought:
            conversion = Conversion.all_merchants.create(
                merchant=merchant, order_id=uuid.uuid4().hex, amount=Decimal("50.00"), currency="PLN",
                customer_email=email, customer_email_normalized=email, status="attributed", program=code.program,
                referral=referral, is_new_customer=True, occurred_at=now,
            )  # fmt: skip
            # The rewards pipeline's record that the order passed fraud scoring (what milestones count).
            Work.all_merchants.create(
                merchant=merchant, referral=referral, conversion=conversion, stage="done", decision="approve"
            )


@pytest.fixture
def board(tenant):
    program = ProgramFactory(merchant=tenant.merchant, slug="friends", leaderboard_enabled=True)
    people = {}
    for name, bought, signed_up in [
        ("Anna Kowalska", 3, 0),
        ("Bob Smith", 1, 1),
        ("Cee", 1, 1),
        ("Dora Blocked", 9, 0),
        ("Eve Nobody", 0, 0),
    ]:
        participant, code = join(program, email=f"{name.split()[0].lower()}@people.example", name=name)
        _friends_bought(code, bought, signed_up)
        people[name] = participant
    Participant.objects.for_merchant(tenant.merchant).filter(pk=people["Dora Blocked"].pk).update(status="blocked")
    RewardRule.objects.for_merchant(tenant.merchant).create(
        program=program, name="Two friends", side="referrer", trigger="milestone", milestone=2, kind="amount_coupon",
        value=Decimal("20"), description="a 20 PLN voucher",
    )  # fmt: skip
    rollup_incremental()
    return program, people


def _as(participant, program) -> Client:
    client = Client()
    session = client.session
    session[f"portal:{program.pk}"] = participant.pk
    session.save()
    return client


def _url(program) -> str:
    return f"/en/p/{program.merchant.slug}/{program.slug}/leaderboard/"


def test_the_leaderboard_shows_first_names_and_initials_and_my_rank(board):
    program, people = board
    response = _as(people["Bob Smith"], program).get(_url(program))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Anna K." in html
    assert "Kowalska" not in html
    assert "anna@people.example" not in html
    assert "Smith" not in html
    assert "Dora" not in html  # blocked
    assert "Eve" not in html  # nobody referred
    assert "You are number 2 of 3." in html  # Bob and Cee tie at 1 bought + 1 signed up: both second
    assert 'class="me" aria-current="true"' in html


def test_ties_share_a_rank(board):
    program, people = board
    html = _as(people["Cee"], program).get(_url(program)).content.decode()
    assert "You are number 2 of 3." in html


def test_someone_without_referrals_is_told_how_to_join_it(board):
    program, people = board
    html = _as(people["Eve Nobody"], program).get(_url(program)).content.decode()
    assert "You are not on the leaderboard yet" in html


def test_milestone_progress(board):
    program, people = board
    html = _as(people["Bob Smith"], program).get(_url(program)).content.decode()
    assert "1 more friend who buys for: a coupon worth 20.00 PLN" in html  # in words, as on the dashboard
    assert 'aria-valuenow="1"' in html
    html = _as(people["Anna Kowalska"], program).get(_url(program)).content.decode()
    assert "You reached every milestone" in html


def test_programs_without_the_leaderboard_answer_404(board):
    program, people = board
    program.leaderboard_enabled = False
    program.save()
    assert _as(people["Bob Smith"], program).get(_url(program)).status_code == 404


def test_signed_out_visitors_go_to_the_portal(board):
    program, _people = board
    response = Client().get(_url(program))
    assert response.status_code == 302
    assert response["Location"].endswith(f"/p/{program.merchant.slug}/{program.slug}/")


def test_the_page_speaks_the_portal_languages(board):
    program, people = board
    response = _as(people["Bob Smith"], program).get(_url(program).replace("/en/", "/pl/"))
    assert response.status_code == 200
    assert 'lang="pl"' in response.content.decode()


def test_someone_without_a_name_is_shown_by_their_place_never_by_their_email(board):
    program, people = board
    nameless, code = join(program, email="zbigniew.brzeczyszczykiewicz@people.example", name="")
    _friends_bought(code, 5)
    rollup_incremental()

    html = _as(people["Bob Smith"], program).get(_url(program)).content.decode()

    assert "Referrer #1" in html
    assert "zb…" not in html  # the start of the address, as it used to be
    assert "brzeczyszczykiewicz" not in html
    assert nameless.first_name_initial == "A friend"  # invitations and code lookups


def test_an_email_typed_as_a_name_is_never_shown(board):
    program, people = board
    for email, name in [
        ("jan.nowak@people.example", "jan.nowak@people.example"),
        ("x@people.example", "x@y.example K"),
    ]:
        _person, code = join(program, email=email, name=name)
        _friends_bought(code, 5)
    _dotted, code = join(program, email="piotr.z@people.example", name="piotr.z")
    _friends_bought(code, 4)
    rollup_incremental()

    html = _as(people["Bob Smith"], program).get(_url(program)).content.decode()

    assert "@" not in html.split("<table")[1].split("</table>")[0]
    assert "jan.nowak" not in html
    assert "piotr.z" not in html  # the address's local part
    assert "Referrer #1" in html
    assert Participant(name="Anna Kowalska", email="anna@x.example").public_name == "Anna K."
    assert Participant(name="Anna", email="anna@x.example").public_name == "Anna"  # a plain first name stays


def test_someone_erased_or_blocked_leaves_the_board_at_once(board):
    from programs.services import participant_erase, participant_set_status

    program, people = board
    viewer = _as(people["Bob Smith"], program)
    assert "Anna K." in viewer.get(_url(program)).content.decode()  # the board is cached now

    participant_erase(participant=people["Anna Kowalska"])
    html = viewer.get(_url(program)).content.decode()
    assert "Anna" not in html

    participant_set_status(participant=people["Cee"], status="blocked")
    assert "Cee" not in viewer.get(_url(program)).content.decode()
