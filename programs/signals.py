"""What programs tell the apps above them (programs imports none of them).

Each receiver is connected in its app's AppConfig.ready and calls that app's own service: the rule lives there. All
are sent synchronously, inside the sender's transaction where it has one.
"""

from dataclasses import dataclass, field

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


# The merchant opens a program's page (program=, request=): each app answers with Panels of what it holds for the
# program (rewards: its rules and the offers they generate in each language; integrations: the install checklist;
# analytics: the program's numbers), so that the program page is the one place to see and reach all of it.
program_overview = Signal()


@dataclass(frozen=True)
class PanelRow:
    label: str
    value: str = ""
    url: str | None = None


@dataclass(frozen=True)
class Panel:
    order: int  # position on the page, lowest first
    title: str
    rows: list[PanelRow] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (label, url): what to do next
    empty: str = ""  # said when there are no rows


def program_panels(program, request) -> list[Panel]:
    """Every app's panels for the program's page, in their order."""
    panels = [panel for _receiver, answer in program_overview.send(sender=None, program=program, request=request)
              for panel in answer]  # fmt: skip
    return sorted(panels, key=lambda panel: panel.order)
