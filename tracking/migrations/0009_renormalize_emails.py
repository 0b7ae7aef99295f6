"""Emails stored before normalisation folded Unicode look-alikes, quoted local parts and international domains
(programs.identity.normalize_email) are normalised again, so old rows compare equal to new ones. Only rows whose
stored address has a non-ASCII character or a quote can change; a row whose new form would collide with another
person's is left as it was (two people can't be merged automatically)."""

from django.db import IntegrityError, migrations, transaction

from programs.identity import normalize_email

NEEDS_WORK = r'[^\x01-\x7f]|"|\.$'

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
        rows = model._base_manager.filter(**{f"{source}__regex": NEEDS_WORK})
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
        ("tracking", "0008_click_device_id"),
    ]

    operations = [migrations.RunPython(renormalize, migrations.RunPython.noop)]
