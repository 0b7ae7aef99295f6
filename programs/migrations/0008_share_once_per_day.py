# ruff: noqa: S608 - the SQL here is assembled from model table names (quoted); it takes no values.
# A share counts once per participant, program, channel and day (the merchant's): every GET of a share link used to
# count one, so reloads, prefetches and crawlers inflated "shares by channel". Existing rows get their day, and
# repeats within a day are removed, keeping the first (the rollups keep their old counts until
# `manage.py rollup_stats --since <date>` recounts those days).

from django.db import migrations, models


def fill_days_and_drop_repeats(apps, schema_editor):
    quote = schema_editor.quote_name
    share = quote(apps.get_model("programs", "ShareEvent")._meta.db_table)
    merchant = quote(apps.get_model("tenancy", "Merchant")._meta.db_table)
    schema_editor.execute(
        f"UPDATE {share} s SET day = (s.created_at AT TIME ZONE m.timezone)::date FROM {merchant} m"
        " WHERE m.id = s.merchant_id"
    )
    schema_editor.execute(
        f"DELETE FROM {share} s USING {share} t"
        " WHERE t.merchant_id = s.merchant_id AND t.participant_id = s.participant_id AND t.program_id = s.program_id"
        " AND t.channel = s.channel AND t.day = s.day AND (t.created_at, t.id) < (s.created_at, s.id)"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("programs", "0007_money_three_decimals"),
        ("tenancy", "0004_no_lone_merchant_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="shareevent",
            name="day",
            field=models.DateField(editable=False, null=True, verbose_name="day"),
        ),
        migrations.RunPython(fill_days_and_drop_repeats, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="shareevent",
            name="day",
            field=models.DateField(editable=False, verbose_name="day"),
        ),
        migrations.AddConstraint(
            model_name="shareevent",
            constraint=models.UniqueConstraint(
                fields=("merchant", "participant", "program", "channel", "day"), name="share_once_per_day"
            ),
        ),
    ]
