"""factory-boy factories. `FACTORY_FOR_MODEL` lets generic tests (admin isolation) make a row of any model."""

from __future__ import annotations

import factory
from django.utils import timezone

from referral_saas.tenancy import services
from referral_saas.tenancy.models import ApiKey, Invitation, Membership, Merchant, ShopSettings, User


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
}
