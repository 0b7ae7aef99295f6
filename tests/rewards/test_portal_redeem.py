"""The portal's redeem protocol, now a service (rewards.services.portal): once per form, a failed post lets its
token go, a limit per participant; and the portal page saying each outcome."""

from __future__ import annotations

import html

import pytest
from django.test import Client

from referral_saas.errors import NotFound, Unprocessable
from rewards.models import LedgerEntry, Reward
from rewards.selectors import ledger_balance
from rewards.services import portal_redeem, portal_redeem_token
from rewards.services.portal import REDEEMS_PER_WINDOW, TooManyRedeems
from tests.factories import ProgramFactory
from tests.portal.test_portal_rewards import _base, _give_points, _item, _page, _sign_in, _token

pytestmark = pytest.mark.django_db


def _spent(program, participant) -> int:
    scope = LedgerEntry.objects.for_merchant(program.merchant).filter(participant=participant, kind="spent")
    return scope.count()


def test_one_form_posted_twice_spends_once_and_the_repeat_answers_with_the_first_reward(program, referrer):
    participant = referrer[0]
    _give_points(program, participant, 300)
    item = _item(program)
    token = portal_redeem_token(program=program, participant=participant)

    first = portal_redeem(program=program, participant=participant, token=token, item_id=str(item.pk))
    repeat = portal_redeem(program=program, participant=participant, token=token, item_id=str(item.pk))

    assert (first.repeat, repeat.repeat) == (False, True)
    assert (
        repeat.reward_id == first.reward_id == Reward.objects.for_merchant(program.merchant).get(catalog_item=item).pk
    )
    assert ledger_balance(participant=participant, program=program) == 200


def test_a_failed_post_spends_nothing_and_lets_its_form_try_again(program, referrer):
    participant = referrer[0]
    _give_points(program, participant, 50)
    item = _item(program)
    token = portal_redeem_token(program=program, participant=participant)
    with pytest.raises(Unprocessable) as refused:
        portal_redeem(program=program, participant=participant, token=token, item_id=str(item.pk))
    assert refused.value.code == "insufficient_points"
    _give_points(program, participant, 50)
    done = portal_redeem(program=program, participant=participant, token=token, item_id=str(item.pk))
    assert (done.repeat, _spent(program, participant)) == (False, 1)


def test_a_form_is_for_its_participant_program_and_catalog(tenant, program, referrer):
    participant = referrer[0]
    _give_points(program, participant, 500)
    other_item = _item(ProgramFactory(merchant=tenant.merchant, slug="vip"))
    token = portal_redeem_token(program=program, participant=participant)
    for forged in ("", "nonsense", token[:-2] + "xx"):
        with pytest.raises(Unprocessable):
            portal_redeem(program=program, participant=participant, token=forged, item_id=str(other_item.pk))
    with pytest.raises(NotFound) as refused:
        portal_redeem(program=program, participant=participant, token=token, item_id=str(other_item.pk))
    assert refused.value.code == "not_in_catalog"
    assert _spent(program, participant) == 0


def test_many_redemptions_in_a_short_while_are_refused_on_the_portal_page(client, program, referrer):
    participant = referrer[0]
    _give_points(program, participant, 10 * (REDEEMS_PER_WINDOW + 1))
    item = _item(program, points=10)
    for _ in range(REDEEMS_PER_WINDOW):
        portal_redeem(
            program=program,
            participant=participant,
            token=portal_redeem_token(program=program, participant=participant),
            item_id=str(item.pk),
        )
    with pytest.raises(TooManyRedeems):
        portal_redeem(
            program=program,
            participant=participant,
            token=portal_redeem_token(program=program, participant=participant),
            item_id=str(item.pk),
        )
    browser = _sign_in(Client(), program, participant)
    response = browser.post(
        _base(program) + "redeem/", {"item": item.pk, "token": _token(_page(browser, program))}, follow=True
    )
    page = html.unescape(response.content.decode())
    assert "You redeemed many times in a short while. Please try again in a few minutes." in page
    assert _spent(program, participant) == REDEEMS_PER_WINDOW
