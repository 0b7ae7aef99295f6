from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Shop integrations"

    def ready(self) -> None:
        from integrations.services.coupons import coupon_publish
        from rewards.services.issuing import coupon_publisher_register

        coupon_publisher_register(coupon_publish)
