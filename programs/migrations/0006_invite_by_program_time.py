# The rollup reads invites per program and day; built without locking the table against writes.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("programs", "0005_program_texts"),
        ("tenancy", "0004_no_lone_merchant_index"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="invite",
            index=models.Index(fields=["merchant", "program", "created_at"], name="invite_by_program_time"),
        ),
    ]
