"""Reads of the integrations app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from integrations.models import MARKETING_PROVIDERS, Connection
from programs.identity import normalize_email
from programs.models import Participant, Program
from referral_saas.tenancy.models import ApiKey
from referral_saas.webhooks.models import WebhookEndpoint
from rewards.models import Reward, Side
from rewards.selectors import milestone_progress, rule_in_words, successful_referrals
from tracking.models import Click, Conversion, Referral, ReferralCode
from tracking.selectors import code_lookup, link_for


def referral_code_for_discounts(*, merchant, livemode: bool, discount_codes: list[str]) -> str | None:
    """The referral code a discount code at checkout stands for: a referral code typed as a discount code, or the
    coupon a friend got as their welcome reward (which names the referral that brought them)."""
    for typed in discount_codes:
        typed = (typed or "").strip()
        if not typed:
            continue
        if code_lookup(merchant=merchant, livemode=livemode, code=typed) is not None:
            return typed
        reward = (
            Reward.objects.for_merchant(merchant)
            .filter(livemode=livemode, coupon_code__iexact=typed, side=Side.REFEREE, referral__isnull=False)
            .select_related("referral__code")
            .first()
        )
        if reward is not None and reward.referral.code_id:
            return reward.referral.code.code
    return None


def order_remaining(*, merchant, livemode: bool, order_id: str) -> Decimal | None:
    """What of an order has not been refunded yet, or None when we do not have the order."""
    row = (
        Conversion.objects.for_merchant(merchant)
        .filter(livemode=livemode, order_id=order_id)
        .values_list("amount", "refunded_amount")
        .first()
    )
    return None if row is None else row[0] - row[1]


def participants_matching(*, merchant, livemode: bool, external_id: str | None, email: str | None):
    """The participants a platform's customer is: by the shop's customer id or the normalised email."""
    match = Q(pk__in=[])
    if external_id:
        match |= Q(external_id=external_id)
    if normalize_email(email):
        match |= Q(email_normalized=normalize_email(email))
    return Participant.objects.for_merchant(merchant).filter(match, livemode=livemode).select_related("merchant")


# --- the install page's checklist ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetupStep:
    key: str
    label: str
    done: bool
    hint: str = ""


def setup_checklist(*, merchant, program) -> list[SetupStep]:
    """The install page's steps from the shop's first API call to a paid reward, each ticked by what really
    happened (in live or test mode): a step is done when its first event exists, never by a box the merchant ticks."""
    keys = ApiKey.objects.for_merchant(merchant).filter(revoked_at__isnull=True)
    shops = Connection.objects.for_merchant(merchant).exclude(provider__in=MARKETING_PROVIDERS)
    connected = shops.filter(status=Connection.Status.ACTIVE).exists()
    orders = Conversion.objects.for_merchant(merchant)
    return [
        SetupStep("connect", _("Your shop is connected, or has an API key"), connected or keys.exists(),
                  _("Connect Shopify, WooCommerce or Stripe below, or create an API key.")),
        SetupStep("api", _("Your shop called the API"), connected or keys.filter(last_used_at__isnull=False).exists(),
                  _("Send a participant or an order with the key (examples below).")),
        SetupStep("joined", _("A customer joined the program"),
                  Participant.objects.for_merchant(merchant).filter(codes__program=program).exists(),
                  _("Join in the portal, or POST /api/v1/participants.")),
        SetupStep("clicked", _("A referral link was followed"),
                  Click.objects.for_merchant(merchant).filter(program=program).exists(),
                  _("Open a participant's link: the snippet keeps rs_click on your shop's pages.")),
        SetupStep("order", _("Your shop reported an order"), orders.exists(),
                  _("POST /api/v1/conversions for every order, referred or not.")),
        SetupStep("attributed", _("An order came with its referral (click_id or code)"),
                  Referral.objects.for_merchant(merchant).filter(program=program, conversions__isnull=False).exists(),
                  _("Send the snippet's click id as click_id (or the code as code) with the order.")),
        SetupStep("rewarded", _("A reward was decided"),
                  Reward.objects.for_merchant(merchant).filter(program=program).exists(),
                  _("Add reward rules to the program; a worker decides each attributed order.")),
        SetupStep("webhooks", _("Your shop hears about rewards (webhooks or a connected shop)"),
                  connected or WebhookEndpoint.objects.for_merchant(merchant).exists(),
                  _("Add a webhook endpoint, or connect the shop so coupons are created there.")),
    ]  # fmt: skip


# --- marketing tools ----------------------------------------------------------------------------------------------

# Every domain event asks whether the merchant has marketing tools: cached, so an event costs no query for it. The
# services that connect or disconnect a tool delete the key (now and after commit); a reader racing them caches
# the old answer for at most this long.
MARKETING_CACHE_SECONDS = 120


def _marketing_cache_key(merchant_id: int) -> str:
    return f"integrations:marketing:{merchant_id}"


def marketing_connections_of(*, merchant_id: int) -> list[tuple[int, str, bool]]:
    """(connection id, provider, livemode) of the merchant's active marketing tool connections."""
    key = _marketing_cache_key(merchant_id)
    cached = cache.get(key)
    if cached is not None:
        return [tuple(row) for row in cached]
    rows = list(
        Connection.objects.for_merchant(merchant_id)
        .filter(provider__in=MARKETING_PROVIDERS, status=Connection.Status.ACTIVE)
        .order_by("pk")
        .values_list("pk", "provider", "livemode")
    )
    cache.set(key, rows, MARKETING_CACHE_SECONDS)
    return rows


def marketing_connections_forget(*, merchant_id: int) -> None:
    cache.delete(_marketing_cache_key(merchant_id))


@dataclass
class Profile:
    """What marketing tools get of one participant: who they are and where they stand in the referral program (the
    program of their first code)."""

    participant_id: int
    email: str | None
    external_id: str | None
    name: str
    language: str
    status: str
    consent: bool
    joined_at: datetime | None
    program: str = ""
    code: str = ""
    link: str = ""
    portal_link: str = ""
    referrals: int = 0
    successful_referrals: int = 0
    rewards_earned: int = 0
    friends_to_next_reward: int | None = None
    next_reward: str = ""

    @property
    def first_name(self) -> str:
        return self.name.split(" ", 1)[0] if self.name else ""

    @property
    def last_name(self) -> str:
        return self.name.split(" ", 1)[1] if " " in self.name else ""

    @property
    def next_reward_text(self) -> str:
        """ "2 more friends: a coupon worth 20.00 PLN" (empty when no milestone is ahead)."""
        if not self.friends_to_next_reward:
            return ""
        return f"{self.friends_to_next_reward} more: {self.next_reward}".strip()


def _portal_link(program: Program, language: str) -> str:
    with translation.override(language or program.default_language):
        path = reverse("portal_home", kwargs={"merchant": program.merchant.slug, "program": program.slug})
    return settings.SITE_URL + path


def marketing_profiles(*, merchant, participant_ids: list[int]) -> dict[int, Profile]:
    """{participant id: Profile} for these participants of the merchant (an id not found is left out)."""
    participants = Participant.objects.for_merchant(merchant).filter(pk__in=participant_ids).select_related("merchant")
    codes: dict[int, ReferralCode] = {}
    for code in (
        ReferralCode.objects.for_merchant(merchant)
        .filter(participant_id__in=participant_ids)
        .select_related("program__merchant")
        .order_by("created_at", "pk")
    ):
        codes.setdefault(code.participant_id, code)
    referrals = dict(
        Referral.objects.for_merchant(merchant)
        .filter(referrer_id__in=participant_ids)
        .exclude(status=Referral.Status.REJECTED)
        .values("referrer_id")
        .annotate(n=Count("pk"))
        .values_list("referrer_id", "n")
    )
    earned = dict(
        Reward.objects.for_merchant(merchant)
        .filter(participant_id__in=participant_ids, status__in=(Reward.Status.ISSUED, Reward.Status.REDEEMED))
        .values("participant_id")
        .annotate(n=Count("pk"))
        .values_list("participant_id", "n")
    )
    profiles = {}
    for participant in participants:
        profile = Profile(
            participant_id=participant.pk,
            email=participant.email,
            external_id=participant.external_id,
            name=participant.name or "",
            language=participant.language or "",
            status=participant.status,
            consent=participant.marketing_consent,
            joined_at=participant.created_at,
            referrals=referrals.get(participant.pk, 0),
            rewards_earned=earned.get(participant.pk, 0),
        )
        code = codes.get(participant.pk)
        if code is not None:
            program = code.program
            profile.program, profile.code, profile.link = program.slug, code.code, link_for(code.code)
            profile.portal_link = _portal_link(program, participant.language)
            profile.successful_referrals = successful_referrals(program=program, referrer=participant)
            progress = milestone_progress(program=program, participant=participant)
            if progress is not None and progress.next_rule is not None:
                profile.friends_to_next_reward = progress.remaining
                with translation.override(participant.language or program.default_language):
                    profile.next_reward = rule_in_words(progress.next_rule, program.currency)
        profiles[participant.pk] = profile
    return profiles


def ga_client_id_for(*, merchant_id: int, event_type: str, object_id) -> str:
    """The Google Analytics client id the shop sent with a friend's sign-up (referral.created) or an order
    (conversion.attributed); empty when it sent none."""
    model = {"referral.created": Referral, "conversion.attributed": Conversion}.get(event_type)
    if model is None or not object_id:
        return ""
    found = model.objects.for_merchant(merchant_id).filter(pk=object_id).values_list("ga_client_id", flat=True)
    return found.first() or ""
