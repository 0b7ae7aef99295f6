"""What tracking tells the apps above it (tracking imports none of them).

Each receiver is connected in its app's AppConfig.ready and calls that app's own service: the rule lives there. Sent
synchronously.
"""

from django.dispatch import Signal

# A customer joined a program through a door that saw them (participant=, merchant=, ip=, user_agent=, device_id=),
# after the join is saved: fraud remembers where they joined from.
participant_joined = Signal()
