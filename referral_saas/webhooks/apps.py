from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "referral_saas.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"
