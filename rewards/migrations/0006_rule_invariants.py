# Reward rules get, as CheckConstraints, the invariants that only the admin form used to check. Fields a rule does
# not use (a milestone count without the milestone trigger, "up to N purchases" without "each purchase", a pool
# without a pool coupon, "at most" without a percentage) were never read by the engine: they are cleared first, so
# rules written around the admin (createmerchant, scripts) pass. A percentage over 100 or a referee milestone is
# not guessed at: such a rule stops the migration, to be fixed by hand.

from django.db import migrations, models
from django.db.models import Q


def clear_unused_fields(apps, schema_editor):
    rules = apps.get_model("rewards", "RewardRule")._base_manager
    rules.filter(~Q(trigger="milestone"), milestone__isnull=False).update(milestone=None)
    rules.filter(~Q(trigger="each_purchase"), max_purchases__isnull=False).update(max_purchases=None)
    rules.filter(~Q(kind="pool_coupon"), pool__isnull=False).update(pool=None)
    rules.filter(~Q(value_type="percent_of_order"), max_value__isnull=False).update(max_value=None)


class Migration(migrations.Migration):

    dependencies = [
        ('rewards', '0005_money_three_decimals'),
    ]

    operations = [
        migrations.RunPython(clear_unused_fields, migrations.RunPython.noop, elidable=True),
        migrations.AddConstraint(
            model_name='rewardrule',
            constraint=models.CheckConstraint(condition=models.Q(('trigger', 'milestone'), ('milestone__isnull', True), _connector='OR'), name='reward_rule_milestone_only_for_one'),
        ),
        migrations.AddConstraint(
            model_name='rewardrule',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('trigger', 'milestone'), _negated=True), ('side', 'referrer'), _connector='OR'), name='reward_rule_milestone_for_referrer'),
        ),
        migrations.AddConstraint(
            model_name='rewardrule',
            constraint=models.CheckConstraint(condition=models.Q(('trigger', 'each_purchase'), ('max_purchases__isnull', True), _connector='OR'), name='reward_rule_max_purchases_only_each'),
        ),
        migrations.AddConstraint(
            model_name='rewardrule',
            constraint=models.CheckConstraint(condition=models.Q(('kind', 'pool_coupon'), ('pool__isnull', True), _connector='OR'), name='reward_rule_pool_only_pool_coupon'),
        ),
        migrations.AddConstraint(
            model_name='rewardrule',
            constraint=models.CheckConstraint(condition=models.Q(('value_type', 'percent_of_order'), ('max_value__isnull', True), _connector='OR'), name='reward_rule_max_value_caps_percent'),
        ),
        migrations.AddConstraint(
            model_name='rewardrule',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('kind', 'percent_coupon'), _negated=True), ('value__lte', 100), _connector='OR'), name='reward_rule_percent_coupon_max_100'),
        ),
        migrations.AddConstraint(
            model_name='rewardrule',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('kind__in', ['amount_coupon', 'cash', 'store_credit']), ('value_type', 'percent_of_order'), _negated=True), ('value__lte', 100), _connector='OR'), name='reward_rule_percent_of_order_max_100'),
        ),
    ]
