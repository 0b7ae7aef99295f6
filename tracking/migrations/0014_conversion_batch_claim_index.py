# The batched rewards pipeline claims one merchant's undecided orders by creation time.
# Built CONCURRENTLY: the conversion table takes orders while the index is built.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tracking", "0013_click_by_time"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="conversion",
            index=models.Index(
                condition=models.Q(("status", "attributed"), ("rejection_reason", "fraud"), _connector="OR"),
                fields=["merchant", "created_at"],
                name="conversion_to_process_by_m",
            ),
        ),
    ]
