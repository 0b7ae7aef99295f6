from django.apps import AppConfig


class RewardsConfig(AppConfig):
    name = "rewards"
    verbose_name = "Rewards"

    def ready(self) -> None:
        from programs import signals
        from rewards import receivers

        signals.program_duplicated.connect(receivers.program_duplicated, dispatch_uid="rewards.program_duplicated")
        signals.program_checked.connect(receivers.program_checked, dispatch_uid="rewards.program_checked")
        signals.program_overview.connect(receivers.program_overview, dispatch_uid="rewards.program_overview")
