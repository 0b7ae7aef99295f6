"""What programs tell the apps above them (programs imports none of them).

Each receiver is connected in its app's AppConfig.ready and calls that app's own service: the rule lives there. All
are sent synchronously, inside the sender's transaction where it has one.
"""

from django.dispatch import Signal

# A program was saved with new settings or a new status (program=): what caches its links' behaviour drops it.
program_changed = Signal()

# A participant was blocked or unblocked (participant=), after the change is saved.
participant_status_changed = Signal()

# A participant was erased (participant=), inside the erasure's transaction: each app erases what it holds of them.
participant_erased = Signal()

# A program was copied (program=, copy=, variants={original variant pk: its copy}), inside the copy's transaction:
# each app copies the configuration it holds for the program (rewards: rules, coupon pools, catalog; fraud: settings).
program_duplicated = Signal()

# The merchant saved a program (program=): each app answers with what in its part of the setup would mislead
# customers or pay nobody (a list of sentences); the admin shows them as warnings. Nothing is written.
program_checked = Signal()


def program_setup_warnings(program) -> list[str]:
    """Every app's warnings about a program's setup (program_checked's answers, in order)."""
    return [
        warning for _receiver, warnings in program_checked.send(sender=None, program=program) for warning in warnings
    ]
