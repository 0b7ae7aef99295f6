"""Reads of the integrations app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from fraud.models import Decision, FraudAssessment
from integrations.models import MARKETING_PROVIDERS, Connection
from programs.identity import normalize_email
from programs.models import Participant, Program
from referral_saas.tenancy.models import ApiKey
from referral_saas.webhooks.models import WebhookDelivery, WebhookEndpoint
from rewards.models import Reward, Side, Work
from rewards.selectors import milestone_progress, program_rules, rule_in_words, successful_referrals
from tracking.models import Click, Conversion, Referral, ReferralCode
from tracking.selectors import code_lookup, link_for
from tracking.services import TEST_REFERRER_EXTERNAL_ID


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


TEST_ORDER_PREFIX = "rs-test-order-"  # the order ids of test orders (integrations.services.test_order)
TEST_CUSTOMER_PREFIX = "rs-test-customer-"  # the external ids of their customers (a new one per test order)


@dataclass(frozen=True)
class SetupStep:
    key: str
    label: str
    done: bool
    hint: str = ""


def setup_checklist(*, merchant, program) -> list[SetupStep]:
    """The install page's steps from the shop's first API call to a paid reward, each ticked by what really
    happened (in live or test mode): a step is done when its first event exists, never by a box the merchant ticks.
    The install page's own test orders tick none: they show the loop works, not that the shop is wired to it."""
    keys = ApiKey.objects.for_merchant(merchant).filter(revoked_at__isnull=True)
    shops = Connection.objects.for_merchant(merchant).exclude(provider__in=MARKETING_PROVIDERS)
    connected = shops.filter(status=Connection.Status.ACTIVE).exists()
    testers = Participant.objects.for_merchant(merchant).filter(
        Q(external_id=TEST_REFERRER_EXTERNAL_ID) | Q(external_id__startswith=TEST_CUSTOMER_PREFIX), livemode=False
    )
    orders = Conversion.objects.for_merchant(merchant).exclude(livemode=False, order_id__startswith=TEST_ORDER_PREFIX)
    return [
        SetupStep("connect", _("Your shop is connected, or has an API key"), connected or keys.exists(),
                  _("Connect Shopify, WooCommerce or Stripe below, or create an API key.")),
        SetupStep("api", _("Your shop called the API"), connected or keys.filter(last_used_at__isnull=False).exists(),
                  _("Send a participant or an order with the key (examples below).")),
        SetupStep("joined", _("A customer joined the program"),
                  Participant.objects.for_merchant(merchant).filter(codes__program=program)
                  .exclude(pk__in=testers).exists(),
                  _("Join in the portal, or POST /api/v1/participants.")),
        SetupStep("clicked", _("A referral link was followed"),
                  Click.objects.for_merchant(merchant).filter(program=program).exclude(participant__in=testers).exists(),
                  _("Open a participant's link: the snippet keeps rs_click on your shop's pages.")),
        SetupStep("order", _("Your shop reported an order"), orders.exists(),
                  _("POST /api/v1/conversions for every order, referred or not.")),
        SetupStep("attributed", _("An order came with its referral (click_id or code)"),
                  Referral.objects.for_merchant(merchant).filter(program=program, conversions__isnull=False)
                  .exclude(referrer__in=testers).exists(),
                  _("Send the snippet's click id as click_id (or the code as code) with the order.")),
        SetupStep("rewarded", _("A reward was decided"),
                  Reward.objects.for_merchant(merchant).filter(program=program).exclude(participant__in=testers).exists(),
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


# --- the install page's test order --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunStage:
    """One stage of a test order's run. `state`: done, waiting (for the worker), held (a reward in its hold period),
    review (a person must decide), stopped (the loop ended here), skipped (nothing to do at this stage)."""

    key: str
    label: str
    state: str
    detail: str = ""

    @property
    def state_label(self) -> str:
        return str(RUN_STATE_LABELS[self.state])


RUN_STATE_LABELS = {
    "done": gettext_lazy("Done"),
    "waiting": gettext_lazy("Waiting"),
    "held": gettext_lazy("On hold"),
    "review": gettext_lazy("Your turn"),
    "stopped": gettext_lazy("Stopped"),
    "skipped": gettext_lazy("Skipped"),
}


@dataclass(frozen=True)
class TestRun:
    order_id: str
    stages: list[RunStage]

    @property
    def finished(self) -> bool:
        """Nothing is left for the worker to do (a hold or a review may still come, by date or by a person)."""
        return all(stage.state != "waiting" for stage in self.stages)

    def as_json(self) -> dict:
        return {
            "order_id": self.order_id,
            "finished": self.finished,
            "stages": [
                {"key": s.key, "label": s.label, "state": s.state, "state_label": s.state_label, "detail": s.detail}
                for s in self.stages
            ],
        }


def _reward_stage(rewards: list, *, worker_done: bool, has_rules: bool) -> RunStage:
    label = _("Reward")
    if not rewards:
        if not worker_done:
            return RunStage("reward", label, "waiting", _("The worker decides the order's rewards."))
        if not has_rules:
            return RunStage("reward", label, "skipped", _("The program has no active reward rule: add one."))
        return RunStage("reward", label, "skipped", _("No reward rule paid for this order."))
    parts = [
        _("%(side)s: %(value)s, %(status)s") % {
            "side": reward.get_side_display(), "value": reward.display_value, "status": reward.get_status_display()
        }
        for reward in rewards
    ]  # fmt: skip
    statuses = {reward.status for reward in rewards}
    if statuses & {Reward.Status.REJECTED, Reward.Status.VOIDED, Reward.Status.CLAWED_BACK}:
        state = "stopped"
    elif Reward.Status.APPROVED in statuses:
        state = "waiting"  # issued by the worker next
    elif Reward.Status.PENDING in statuses:
        held = min(reward.hold_until for reward in rewards if reward.status == Reward.Status.PENDING)
        if held <= timezone.now():
            state = "waiting"  # released by the worker's next sweep
        else:
            state = "held"
            parts.append(_("held until %(date)s (the rule's hold period)") % {"date": held.date().isoformat()})
    else:
        state = "done"
    return RunStage("reward", label, state, "; ".join(parts))


def _webhook_stage(*, merchant, order_id: str, worker_done: bool) -> RunStage:
    label = _("Webhooks to your test-mode endpoints")
    endpoints = WebhookEndpoint.objects.for_merchant(merchant).filter(livemode=False, enabled=True)
    if not endpoints.exists():
        return RunStage("webhooks", label, "skipped", _("No test-mode webhook endpoint: add one to hear of rewards."))
    deliveries = list(
        WebhookDelivery.objects.for_merchant(merchant)
        .filter(message__livemode=False, message__payload__order_id=order_id)
        .select_related("message")
        .order_by("created_at", "pk")
    )
    if not deliveries:
        if worker_done:
            none = _("Your test-mode endpoints listen to none of this order's events.")
            return RunStage("webhooks", label, "skipped", none)
        return RunStage("webhooks", label, "waiting", _("No event sent yet."))
    succeeded = [d.message.type for d in deliveries if d.status == WebhookDelivery.Status.SUCCEEDED]
    detail = _("%(done)s of %(total)s delivered") % {"done": len(succeeded), "total": len(deliveries)}
    if succeeded:
        detail += f" ({', '.join(dict.fromkeys(succeeded))})"
    if any(d.status == WebhookDelivery.Status.FAILED for d in deliveries):
        return RunStage("webhooks", label, "stopped", detail)
    return RunStage("webhooks", label, "done" if len(succeeded) == len(deliveries) else "waiting", detail)


def test_order_run(*, merchant, program, order_id: str) -> TestRun | None:
    """Where a test order of the install page stands, stage by stage, read from the rows the loop wrote (None for an
    order id that is not a test order of this program)."""
    if not order_id.startswith(TEST_ORDER_PREFIX):
        return None
    conversion = (
        Conversion.objects.for_merchant(merchant)
        .filter(livemode=False, order_id=order_id)
        .select_related("referral__code", "referral__referrer")
        .first()
    )
    referrer = (
        Participant.objects.for_merchant(merchant)
        .filter(livemode=False, external_id=TEST_REFERRER_EXTERNAL_ID, codes__program=program)
        .first()
    )
    if conversion is None or referrer is None or (conversion.program_id not in (None, program.pk)):
        return None
    code = referrer.codes.filter(program=program).values_list("code", flat=True).first()
    stages = [RunStage("joined", _("Test referrer joined"), "done", _("Code %(code)s") % {"code": code})]
    stages.append(
        RunStage("clicked", _("Their link was followed"), "done", _("Click %(id)s") % {"id": conversion.click_id})
        if conversion.click_id
        else RunStage("clicked", _("Their link was followed"), "stopped", _("The order names no click."))
    )
    if conversion.status != Conversion.Status.ATTRIBUTED:
        reason = conversion.get_rejection_reason_display() or conversion.get_status_display()
        stages.append(RunStage("attributed", _("Order attributed to the test referrer"), "stopped", reason))
        return TestRun(order_id, stages)
    stages.append(
        RunStage("attributed", _("Order attributed to the test referrer"), "done",
                 _("Order %(order)s, %(amount)s %(currency)s") % {
                     "order": order_id, "amount": conversion.amount, "currency": conversion.currency})
    )  # fmt: skip
    work = Work.objects.for_merchant(merchant).filter(conversion=conversion, refund__isnull=True).first()
    assessment = FraudAssessment.objects.for_merchant(merchant).filter(conversion=conversion).first()
    fraud_label = _("Fraud check")
    if assessment is None:
        stages.append(RunStage("fraud", fraud_label, "waiting", _("The worker scores the order.")))
    else:
        detail = _("%(decision)s (score %(score)s)") % {
            "decision": assessment.get_decision_display(), "score": assessment.score
        }  # fmt: skip
        state = {Decision.APPROVE: "done", Decision.REVIEW: "review", Decision.REJECT: "stopped"}[assessment.decision]
        if state == "review":
            detail += " — " + _("in your fraud review queue: approve or reject it there")
        stages.append(RunStage("fraud", fraud_label, state, detail))
    rewards = list(
        Reward.objects.for_merchant(merchant).filter(conversion=conversion).select_related("participant").order_by("pk")
    )
    worker_done = work is not None and work.stage == Work.Stage.DONE
    if work is not None and work.stage == Work.Stage.REVIEW and not rewards:
        stages.append(RunStage("reward", _("Reward"), "review", _("Decided after the fraud review.")))
    else:
        stages.append(_reward_stage(rewards, worker_done=worker_done, has_rules=bool(program_rules(program))))
    stages.append(_webhook_stage(merchant=merchant, order_id=order_id, worker_done=work is not None))
    return TestRun(order_id, stages)
