"""Rewards' answers to what the apps below it tell it, connected in RewardsConfig.ready."""

from __future__ import annotations

from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from programs.services import program_rows_copy
from programs.signals import Panel, PanelRow
from referral_saas.tenancy.models import LANGUAGE_CHOICES
from rewards import offers, selectors
from rewards.models import CatalogItem, CouponPool, RewardRule, Side


def program_duplicated(sender, *, program, copy, variants, **kwargs) -> None:
    # Pools are copied empty (a coupon code is single-use); rules and catalog items point at the copies.
    pools = program_rows_copy(model=CouponPool, program=program, copy=copy)
    program_rows_copy(model=RewardRule, program=program, copy=copy, variant=variants, pool=pools)
    program_rows_copy(model=CatalogItem, program=program, copy=copy, pool=pools)


def program_checked(sender, *, program, **kwargs) -> list[str]:
    return selectors.program_setup_warnings(program=program) + offers.offer_text_mismatches(program=program)


def program_overview(sender, *, program, request, **kwargs) -> list[Panel]:
    """The program page's rewards panels: the rules that pay (with what each pays, in words), and the offers as
    customers read them in each language and A/B variant (generated from those rules unless the merchant wrote
    their own)."""
    rules = RewardRule.objects.for_merchant(program.merchant).filter(program=program).select_related("variant", "pool")
    rule_rows = []
    for rule in rules.order_by("side", "trigger", "pk"):
        rule.program = program
        state = "" if rule.active else f" ({_('inactive')})"
        scope = f" · {rule.variant.name}" if rule.variant_id else ""
        rule_rows.append(
            PanelRow(
                f"{rule.name}{scope}{state}",
                f"{Side(rule.side).label}: {offers.rule_offer(rule, program.currency)}",
                reverse("admin:rewards_rewardrule_change", args=[rule.pk]),
            )
        )
    add = f"{reverse('admin:rewards_rewardrule_add')}?program={program.pk}"
    panels = [
        Panel(10, _("Reward rules: what pays"), rule_rows, [(_("Add a reward rule"), add)],
              empty=_("No reward rule yet: nobody will be paid. Add one for the referrer and one for the friend.")),
    ]  # fmt: skip
    offer_rows = []
    variants = [None, *program.variants.all()]
    for code, name in LANGUAGE_CHOICES:
        for variant in variants:
            texts = offers.offers_for(program=program, variant=variant, language=code)
            where = name if variant is None else f"{name} · {variant.name}"
            with translation.override(code):
                offer_rows.append(
                    PanelRow(
                        where,
                        _("You get: %(referrer)s — Your friends get: %(friend)s")
                        % {"referrer": texts["referrer_offer"] or "—", "friend": texts["referee_offer"] or "—"},
                    )
                )
    panels.append(
        Panel(11, _("The offer as customers read it (portal, emails, code check)"), offer_rows,
              empty=_("Generated from the reward rules unless you write your own text above.")),
    )  # fmt: skip
    return panels
