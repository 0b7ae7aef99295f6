"""+tags now fold on every domain (programs.identity.normalize_email: anna+shop@outlook.com = anna@outlook.com, not
only at Gmail), so stored normalised emails are normalised again and old rows compare equal to new ones (a
self-referral with a +tag, a friend invited twice, a blocklisted address). Only rows whose address has a "+" can
change; as in 0009, a row whose new form would collide with another row (two people, two invites, two blocklist
entries) is left as it was. The address as given (what mail is sent to) is never changed."""

from django.db import IntegrityError, migrations, transaction

from programs.identity import normalize_email

# (app, model, the address as given, its normalised column)
COLUMNS = [
    ("programs", "Participant", "email", "email_normalized"),
    ("programs", "Invite", "email", "email_normalized"),
    ("tracking", "Referral", "referee_email", "referee_email_normalized"),
    ("tracking", "Conversion", "customer_email", "customer_email_normalized"),
    ("fraud", "BlocklistEntry", "value", "value"),
]


def renormalize(apps, schema_editor):
    for app, name, source, column in COLUMNS:
        model = apps.get_model(app, name)
        rows = model._base_manager.filter(**{f"{source}__contains": "+"})
        if name == "BlocklistEntry":
            rows = rows.filter(kind="email")
        for pk, address, stored in rows.values_list("pk", source, column).iterator(chunk_size=1000):
            new = normalize_email(address)
            if new and new != stored:
                try:
                    with transaction.atomic():
                        model._base_manager.filter(pk=pk).update(**{column: new})
                except IntegrityError:
                    pass


class Migration(migrations.Migration):
    dependencies = [
        ("fraud", "0001_initial"),
        ("programs", "0006_invite_by_program_time"),
        ("tracking", "0009_renormalize_emails"),
    ]

    operations = [migrations.RunPython(renormalize, migrations.RunPython.noop)]
