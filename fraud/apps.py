from django.apps import AppConfig


class FraudConfig(AppConfig):
    name = "fraud"
    verbose_name = "Fraud"

    def ready(self) -> None:
        from fraud import receivers
        from programs import signals
        from tracking.signals import participant_joined

        signals.program_duplicated.connect(receivers.program_duplicated, dispatch_uid="fraud.program_duplicated")
        participant_joined.connect(receivers.participant_joined, dispatch_uid="fraud.participant_joined")
