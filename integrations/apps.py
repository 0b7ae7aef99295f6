from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from integrations.install import program_overview
        from integrations.services.coupons import coupon_publish
        from integrations.services.marketing import marketing_events_hear
        from programs.signals import program_overview as overview_signal
        from referral_saas.webhooks.services import domain_event_listener_register
        from rewards.services.issuing import coupon_publisher_register

        coupon_publisher_register(coupon_publish)
        # Marketing tools hear our domain events where the webhooks are emitted (in the emitting transaction).
        domain_event_listener_register(marketing_events_hear)
        overview_signal.connect(program_overview, dispatch_uid="integrations.program_overview")
