"""factory-boy factories. `FACTORY_FOR_MODEL` lets generic tests (admin isolation) make a row of any model."""

from __future__ import annotations

import factory
from django.utils import timezone

from programs.models import Invite, Participant, Program, ShareEvent
from referral_saas.tenancy import services
from referral_saas.tenancy.models import ApiKey, Invitation, Membership, Merchant, ShopSettings, User
from tracking.models import Click, Conversion, ExchangeRate, Referral, ReferralCode, Refund


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"staff{n}@shop.example")
    password = factory.django.Password("correct-horse-battery")

    @factory.post_generation
    def verified(obj, create, extracted, **kwargs):
        if create and extracted is not False:
            from allauth.account.models import EmailAddress

            EmailAddress.objects.get_or_create(user=obj, email=obj.email, defaults={"verified": True, "primary": True})


class MerchantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Merchant

    name = factory.Sequence(lambda n: f"Shop {n}")
    slug = factory.Sequence(lambda n: f"shop-{n}")
    default_currency = "PLN"
    timezone = "Europe/Warsaw"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    merchant = factory.SubFactory(MerchantFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.OWNER

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return model_class.all_merchants.create(*args, **kwargs)


class InvitationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invitation

    merchant = factory.SubFactory(MerchantFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@elsewhere.example")
    role = Membership.Role.ANALYST
    token_hash = factory.Sequence(lambda n: f"{n:064d}")
    expires_at = factory.LazyFunction(lambda: timezone.now() + timezone.timedelta(days=7))

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return model_class.all_merchants.create(*args, **kwargs)


class ProgramFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Program

    merchant = factory.SubFactory(MerchantFactory)
    name = factory.Sequence(lambda n: f"Program {n}")
    slug = factory.Sequence(lambda n: f"program-{n}")
    status = Program.Status.ACTIVE
    starts_on = factory.LazyFunction(lambda: timezone.localdate() - timezone.timedelta(days=30))
    currency = "PLN"
    landing_url = "https://shop.example/welcome?lang=pl"
    referrer_offer = "10% of your friend's first order"
    referee_offer = "10% off your first order"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return model_class.all_merchants.create(*args, **kwargs)


def join(
    program: Program,
    *,
    email: str | None = None,
    external_id: str | None = None,
    name: str = "Anna Kowalska",
    livemode: bool = True,
):
    """A participant of `program` with their code, through the real service."""
    from tracking.services import participant_upsert

    participant, code, _created = participant_upsert(
        merchant=program.merchant, livemode=livemode, program=program, email=email, external_id=external_id, name=name
    )
    return participant, code


_counter = iter(range(10**6))


def _participant(merchant):
    return join(ProgramFactory(merchant=merchant), email=f"p{next(_counter)}@people.example")[0]


def _code(merchant):
    return join(ProgramFactory(merchant=merchant), email=f"c{next(_counter)}@people.example")[1]


def _click(merchant):
    import uuid

    code = _code(merchant)
    return Click.all_merchants.create(
        merchant=merchant,
        click_id=uuid.uuid4(),
        occurred_at=timezone.now(),
        program=code.program,
        code=code,
        participant=code.participant,
        utm_source="whatsapp",
    )


def _referral(merchant):
    from tracking.services import referral_record_signup

    code = _code(merchant)
    return referral_record_signup(
        merchant=merchant,
        livemode=True,
        customer_external_id=None,
        customer_email=f"friend{next(_counter)}@people.example",
        code=code.code,
    )[0]


def _conversion(merchant):
    from decimal import Decimal

    from tracking.services import conversion_record

    code = _code(merchant)
    return conversion_record(
        merchant=merchant,
        livemode=True,
        order_id=f"order-{next(_counter)}",
        amount=Decimal("100.00"),
        currency="PLN",
        customer_email=f"buyer{next(_counter)}@people.example",
        code=code.code,
    )[0]


def _refund(merchant):
    from decimal import Decimal

    from tracking.services import refund_record

    conversion = _conversion(merchant)
    return refund_record(
        merchant=merchant, livemode=True, order_id=conversion.order_id, amount=Decimal("10.00"), refund_id="r-1"
    )[0]


def _invite(merchant):
    participant = _participant(merchant)
    program = ReferralCode.all_merchants.filter(participant=participant).first().program
    return Invite.all_merchants.create(
        merchant=merchant,
        program=program,
        participant=participant,
        email="friend@elsewhere.example",
        email_normalized="friend@elsewhere.example",
    )


def _share(merchant):
    participant = _participant(merchant)
    program = ReferralCode.all_merchants.filter(participant=participant).first().program
    return ShareEvent.all_merchants.create(
        merchant=merchant, program=program, participant=participant, channel="x", day=timezone.localdate()
    )


def make_api_key(merchant: Merchant, mode: str = ApiKey.Mode.LIVE, name: str = "Checkout") -> tuple[ApiKey, str]:
    return services.apikey_create(merchant=merchant, name=name, mode=mode)


def _api_key_row(merchant: Merchant) -> ApiKey:
    return make_api_key(merchant, name="Searchable key")[0]


# model -> callable(merchant) returning a saved row owned by that merchant
FACTORY_FOR_MODEL = {
    Membership: lambda merchant: MembershipFactory(merchant=merchant, role=Membership.Role.ANALYST),
    Invitation: lambda merchant: InvitationFactory(merchant=merchant),
    ApiKey: _api_key_row,
    ShopSettings: lambda merchant: ShopSettings.objects.get(pk=merchant.pk),
    Program: lambda merchant: ProgramFactory(merchant=merchant),
    Participant: _participant,
    ReferralCode: _code,
    Click: _click,
    Referral: _referral,
    Conversion: _conversion,
    Refund: _refund,
    Invite: _invite,
    ShareEvent: _share,
    ExchangeRate: lambda merchant: ExchangeRate.all_merchants.create(
        merchant=merchant, base_currency="EUR", quote_currency="PLN", rate="4.2875", valid_from=timezone.localdate()
    ),
}


# --- fraud ------------------------------------------------------------------------------------------------------


def _fraud_settings(merchant):
    from fraud.models import FraudSettings

    return FraudSettings.all_merchants.create(merchant=merchant, program=ProgramFactory(merchant=merchant))


def _blocklist_entry(merchant):
    from fraud.services import blocklist_entry_add

    return blocklist_entry_add(merchant=merchant, kind="domain", value=f"blocked{next(_counter)}.example", note="x")


def _fraud_assessment(merchant):
    """An order from a disposable mailbox: scored 30, waiting in the review queue."""
    from decimal import Decimal

    from fraud.services import conversion_assess
    from tracking.services import conversion_record

    code = _code(merchant)
    conversion = conversion_record(
        merchant=merchant,
        livemode=True,
        order_id=f"order-{next(_counter)}",
        amount=Decimal("100.00"),
        currency="PLN",
        customer_email=f"buyer{next(_counter)}@mailinator.com",
        code=code.code,
    )[0]
    return conversion_assess(conversion=conversion)


def _register_fraud_factories() -> None:
    from fraud.models import BlocklistEntry, FraudAssessment, FraudSettings

    FACTORY_FOR_MODEL.update(
        {FraudSettings: _fraud_settings, BlocklistEntry: _blocklist_entry, FraudAssessment: _fraud_assessment}
    )


_register_fraud_factories()


# --- rewards ------------------------------------------------------------------------------------------------------


def reward_rule(program, **overrides):
    """A rule of `program`: by default 10% of the order as an amount-off coupon for the referrer."""
    from decimal import Decimal

    from rewards.models import RewardRule

    values = {
        "name": f"Rule {next(_counter)}",
        "side": "referrer",
        "trigger": RewardRule.Trigger.FIRST_PURCHASE,
        "kind": "amount_coupon",
        "value_type": RewardRule.ValueType.PERCENT_OF_ORDER,
        "value": Decimal("10"),
        "max_value": Decimal("50"),
        "hold_days": 30,
        **overrides,
    }
    return RewardRule.objects.for_merchant(program.merchant).create(program=program, **values)


def coupon_pool(program, *, codes=(), **overrides):
    from rewards.models import Coupon, CouponPool

    values = {"name": f"Pool {next(_counter)}", "description": "15% off", **overrides}
    pool = CouponPool.objects.for_merchant(program.merchant).create(program=program, **values)
    for code in codes:
        Coupon.objects.for_merchant(program.merchant).create(pool=pool, code=code)
    return pool


def reward_for(participant, rule, **overrides):
    """A reward made directly (not by the pipeline): pending, inside its hold, with its first audit line."""
    from decimal import Decimal

    from rewards.models import Reward
    from rewards.services.transitions import reward_record_created

    value = overrides.pop("value", Decimal("12.99") if rule.unit == "money" else rule.value)
    values = {
        "livemode": participant.livemode,
        "program": rule.program,
        "rule": rule,
        "side": rule.side,
        "participant": participant,
        "kind": rule.kind,
        "unit": rule.unit,
        "value": value,
        "original_value": value,
        "currency": rule.program.currency,
        "description": rule.description,
        "status": Reward.Status.PENDING,
        "hold_until": timezone.now() + timezone.timedelta(days=rule.hold_days),
        **overrides,
    }
    reward = Reward.objects.for_merchant(participant.merchant).create(**values)
    reward_record_created(reward=reward, actor="system:test")
    return reward


def _reward_rule_row(merchant):
    return reward_rule(ProgramFactory(merchant=merchant))


def _reward_row(merchant):
    participant = _participant(merchant)
    program = ReferralCode.all_merchants.filter(participant=participant).first().program
    return reward_for(participant, reward_rule(program))


def _coupon_pool_row(merchant):
    return coupon_pool(ProgramFactory(merchant=merchant))


def _coupon_row(merchant):
    from rewards.models import Coupon

    pool = coupon_pool(ProgramFactory(merchant=merchant), codes=[f"CODE-{next(_counter)}"])
    return Coupon.objects.for_merchant(merchant).get(pool=pool)


def _catalog_item_row(merchant):
    from decimal import Decimal

    from rewards.models import CatalogItem

    return CatalogItem.objects.for_merchant(merchant).create(
        program=ProgramFactory(merchant=merchant),
        name=f"Voucher {next(_counter)}",
        points=500,
        kind="amount_coupon",
        value=Decimal("20"),
    )


def _ledger_entry_row(merchant):
    from decimal import Decimal

    from rewards.models import LedgerEntry

    participant = _participant(merchant)
    program = ReferralCode.all_merchants.filter(participant=participant).first().program
    return LedgerEntry.objects.for_merchant(merchant).create(
        program=program,
        participant=participant,
        account=LedgerEntry.Account.POINTS,
        kind=LedgerEntry.Kind.ADJUSTMENT,
        amount=Decimal("100"),
        note="Welcome bonus",
    )


def _register_rewards_factories() -> None:
    from rewards.models import CatalogItem, Coupon, CouponPool, LedgerEntry, Reward, RewardRule

    FACTORY_FOR_MODEL.update(
        {
            RewardRule: _reward_rule_row,
            Reward: _reward_row,
            CouponPool: _coupon_pool_row,
            Coupon: _coupon_row,
            CatalogItem: _catalog_item_row,
            LedgerEntry: _ledger_entry_row,
        }
    )


_register_rewards_factories()


# --- webhooks ---------------------------------------------------------------------------------------------------


def _webhook_endpoint(merchant):
    from referral_saas.webhooks.services import endpoint_create

    return endpoint_create(
        merchant=merchant, livemode=True, url=f"https://hooks{next(_counter)}.shop.example/in", description="ERP"
    )[0]


def _webhook_delivery(merchant):
    from referral_saas.webhooks.models import WebhookDelivery
    from referral_saas.webhooks.services import webhook_emit

    endpoint = _webhook_endpoint(merchant)
    message = webhook_emit(merchant=merchant, livemode=True, event_type="reward.issued", data={"id": next(_counter)})
    return WebhookDelivery.all_merchants.get(merchant=merchant, endpoint=endpoint, message=message)


def _register_webhook_factories() -> None:
    from referral_saas.webhooks.models import WebhookDelivery, WebhookEndpoint

    FACTORY_FOR_MODEL.update({WebhookEndpoint: _webhook_endpoint, WebhookDelivery: _webhook_delivery})


_register_webhook_factories()


# --- analytics --------------------------------------------------------------------------------------------------


def _daily_stats(merchant):
    from analytics.models import DailyStats

    return DailyStats.objects.for_merchant(merchant).create(
        program=ProgramFactory(merchant=merchant), day=timezone.localdate(), clicks=12, signups=3
    )


def _register_analytics_factories() -> None:
    from analytics.models import DailyStats

    FACTORY_FOR_MODEL.update({DailyStats: _daily_stats})


_register_analytics_factories()


def fullwidth(text: str) -> str:
    """'gmail' -> the fullwidth look-alikes U+FF47... (how a cheat writes an address that looks the same)."""
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


# --- integrations -----------------------------------------------------------------------------------------------


def shop_connection(merchant, *, provider: str = "shopify", account: str | None = None, secret: str = "hush", **kw):
    """A connected shop, through the real service (secrets encrypted)."""
    from integrations.services import connection_create

    account = account or f"shop{next(_counter)}.myshopify.com"
    return connection_create(merchant=merchant, provider=provider, account=account, secret=secret, **kw)[0]


def _inbound_event(merchant):
    from integrations.models import InboundEvent

    connection = shop_connection(merchant)
    return InboundEvent.objects.for_merchant(merchant).create(
        connection=connection, event_id=f"orders/paid:{next(_counter)}", topic="orders/paid", body=b"{}"
    )


def _outbound_sync(merchant):
    from integrations.models import OutboundSync

    connection = shop_connection(merchant, provider="klaviyo", account=f"kl{next(_counter)}", secret="pk_test")
    return OutboundSync.objects.for_merchant(merchant).create(
        connection=connection, kind="profile", key=f"participant.created:{next(_counter)}", event_type="x"
    )


def _register_integrations_factories() -> None:
    from integrations.models import Connection, InboundEvent, OutboundSync

    FACTORY_FOR_MODEL.update({Connection: shop_connection, InboundEvent: _inbound_event, OutboundSync: _outbound_sync})


_register_integrations_factories()
