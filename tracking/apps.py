from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "tracking"
    verbose_name = "Tracking"

    def ready(self) -> None:
        from programs import signals
        from referral_saas.health import register_redis_figure
        from tracking import receivers
        from tracking.clicks import DEAD_STREAM

        # Clicks the ingest could not store (`manage.py clickdeadletters` lists them), shown by /readyz.
        register_redis_figure("clicks_dead_letter", lambda client: client.xlen(DEAD_STREAM))
        signals.program_changed.connect(receivers.program_changed, dispatch_uid="tracking.program_changed")
        signals.participant_status_changed.connect(
            receivers.participant_status_changed, dispatch_uid="tracking.participant_status_changed"
        )
        signals.participant_erased.connect(receivers.participant_erased, dispatch_uid="tracking.participant_erased")
