# Rewards get a reason code (why one was rejected, voided or clawed back), set by the services that end them, so
# the portal says why in the customer's language instead of guessing from the staff's English note. Existing rows
# get theirs from the note, by the words the portal looked for (fraud first, then a limit, then the budget; a
# refund for a voided reward; every clawback is a refund's); a note that says none of these keeps no code, and the
# portal's general sentence, as before.

from django.db import migrations, models


def fill_from_notes(apps, schema_editor):
    rewards = apps.get_model("rewards", "Reward")._base_manager
    rejected = rewards.filter(status="rejected", reason_code="")
    rejected.filter(reason__icontains="budget").update(reason_code="budget")
    rejected.filter(reason__istartswith="limit of").update(reason_code="cap")
    rewards.filter(status="rejected", reason__icontains="fraud").update(reason_code="fraud")
    rejected.filter(reason="The referral was rejected.").update(reason_code="referral_rejected")
    rewards.filter(status="voided", reason_code="", reason__icontains="refund").update(reason_code="refund")
    rewards.filter(status="clawed_back", reason_code="").update(reason_code="refund")


class Migration(migrations.Migration):

    dependencies = [
        ('rewards', '0006_rule_invariants'),
    ]

    operations = [
        migrations.AddField(
            model_name='reward',
            name='reason_code',
            field=models.CharField(blank=True, choices=[('', 'None'), ('fraud', 'Rejected as fraud'), ('cap', 'A per-person limit was reached'), ('budget', "The program's budget is spent"), ('referral_rejected', 'The referral was rejected'), ('refund', 'The order was refunded'), ('staff', "Ended by the shop's staff")], default='', editable=False, max_length=20, verbose_name='reason code'),
        ),
        migrations.RunPython(fill_from_notes, migrations.RunPython.noop, elidable=True),
    ]
