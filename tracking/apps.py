from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "tracking"
    verbose_name = "Tracking"

    def ready(self) -> None:
        from referral_saas.health import register_redis_figure
        from tracking.clicks import DEAD_STREAM

        # Clicks the ingest could not store (`manage.py clickdeadletters` lists them), shown by /readyz.
        register_redis_figure("clicks_dead_letter", lambda client: client.xlen(DEAD_STREAM))
