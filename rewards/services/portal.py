"""The portal's redeem form: spending points on an item of a program's catalog, once per form however often (and
from however many tabs at once) it is posted."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from django.core import signing
from django.core.cache import cache
from django.utils.translation import gettext as _

from programs.models import Participant, Program
from referral_saas import ratelimit
from referral_saas.api import is_id
from referral_saas.errors import ApplicationError, NotFound, Unprocessable
from rewards.models import CatalogItem
from rewards.services.points import points_redeem

REDEEM_SALT = "portal-redeem"
REDEEM_TOKEN_MAX_AGE = 12 * 60 * 60  # a dashboard left open for a day's shopping still redeems
REDEEMS_PER_WINDOW, REDEEM_WINDOW = 10, 10 * 60
REDEEM_WAIT_SECONDS = 3.0  # a second post waits this long for the first one's reward


class TooManyRedeems(ApplicationError):
    status_code = 429
    code = "rate_limited"
    default_message = "Too many redemptions in a short while."


@dataclass(frozen=True)
class PortalRedeemed:
    item: CatalogItem
    reward_id: int | None  # None: the first post of this form is still redeeming
    repeat: bool = False  # a repeat of a post that redeemed: the reward is that post's


def portal_redeem_token(*, program: Program, participant: Participant) -> str:
    """A one-time token for one view of the dashboard's redeem forms, signed for this participant and program."""
    payload = {"p": program.pk, "u": participant.pk, "n": secrets.token_urlsafe(12)}
    return signing.dumps(payload, salt=REDEEM_SALT)


def portal_redeem(*, program: Program, participant: Participant, token: str, item_id: str) -> PortalRedeemed:
    """Spend the participant's points on an item of `program`'s catalog (points_redeem), posted with a token of
    portal_redeem_token.

    The rules: the token is this participant's and program's, at most REDEEM_TOKEN_MAX_AGE old (else Unprocessable
    "stale_form"); the item is an active one of this program's catalog (else NotFound "not_in_catalog"); a form
    redeems once: the first post takes the token in Redis (an atomic add) and leaves the reward's id there, a repeat
    waits up to REDEEM_WAIT_SECONDS for it and answers with it (repeat=True), or with reward_id None while the first
    is still at work. A post that failed spent nothing and lets the token go, so a repeat tries again. At most
    REDEEMS_PER_WINDOW redemptions a participant per REDEEM_WINDOW seconds (else TooManyRedeems)."""
    try:
        signed = signing.loads(token, salt=REDEEM_SALT, max_age=REDEEM_TOKEN_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired included
        signed = None
    if not isinstance(signed, dict) or signed.get("p") != program.pk or signed.get("u") != participant.pk:
        raise Unprocessable(_("This form is out of date; reload the page."), code="stale_form")
    item = (
        CatalogItem.objects.for_merchant(program.merchant).filter(program=program, active=True, pk=item_id).first()
        if is_id(item_id)
        else None
    )
    if item is None:
        raise NotFound(_("No such item in the catalog."), code="not_in_catalog")
    once = f"portal-redeem:{program.pk}:{participant.pk}:{signed.get('n')}:{item.pk}"
    if not cache.add(once, 0, REDEEM_TOKEN_MAX_AGE):
        reward_id = cache.get(once)
        deadline = time.monotonic() + REDEEM_WAIT_SECONDS
        while reward_id == 0 and time.monotonic() < deadline:  # the first post is still redeeming
            time.sleep(0.1)
            reward_id = cache.get(once)
        if reward_id:
            return PortalRedeemed(item=item, reward_id=reward_id, repeat=True)
        # The first post failed and spent nothing (its token was let go): this one tries again.
        if reward_id == 0 or not cache.add(once, 0, REDEEM_TOKEN_MAX_AGE):
            return PortalRedeemed(item=item, reward_id=None, repeat=True)
    allowed, _wait = ratelimit.hit(
        f"portal-redeem:{program.merchant_id}:{participant.pk}", limit=REDEEMS_PER_WINDOW, window_seconds=REDEEM_WINDOW
    )
    if not allowed:
        cache.delete(once)
        raise TooManyRedeems()
    try:
        reward = points_redeem(participant=participant, item_id=item.pk, actor="portal")
    except ApplicationError:
        cache.delete(once)  # nothing was spent: a repeat of this post may try again
        raise
    cache.set(once, reward.pk, REDEEM_TOKEN_MAX_AGE)
    return PortalRedeemed(item=item, reward_id=reward.pk)
