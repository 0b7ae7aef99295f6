from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "referral_saas.tenancy"
    label = "tenancy"
    verbose_name = "Shop & team"

    def ready(self) -> None:
        from referral_saas.tenancy import schema  # noqa: F401 - registers the OpenAPI auth extension
