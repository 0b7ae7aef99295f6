"""Reads for programs and participants."""

from __future__ import annotations

import hashlib

import django_filters
from django.core.cache import cache
from django.utils.translation import gettext as _

from programs.identity import normalize_email
from programs.models import Participant, Program, ProgramText, ProgramVariant
from referral_saas.api import is_id
from referral_saas.errors import NotFound, ValidationFailed
from referral_saas.filters import UtcIsoDateTimeFilter


def public_names_version(*, merchant_id: int) -> int:
    """Changes whenever a participant's public name may have (renamed, blocked, erased): caches of what the public
    sees (the leaderboard) put it in their key, so nobody's name outlives their erasure."""
    return cache.get(_public_names_key(merchant_id)) or 0


def _public_names_key(merchant_id: int) -> str:
    return f"programs:public-names:{merchant_id}"


def program_list(*, merchant):
    return Program.objects.for_merchant(merchant).select_related("merchant").prefetch_related("variants")


def program_get(*, merchant, slug: str) -> Program:
    program = program_list(merchant=merchant).filter(slug=slug).first()
    if program is None:
        raise NotFound("No program with this slug.")
    return program


def program_get_by_slug(*, merchant, slug: str) -> Program:
    """The program a write names in its body: an unknown slug is the request's field error (400 on `program`), not
    a missing page (program_get's 404)."""
    program = Program.objects.for_merchant(merchant).select_related("merchant").filter(slug=slug).first()
    if program is None:
        raise ValidationFailed(fields={"program": [_("No program with this slug.")]})
    return program


def variant_for(*, program: Program, participant: Participant) -> ProgramVariant | None:
    """Deterministic weighted choice: the same participant always lands in the same arm."""
    variants = list(ProgramVariant.objects.for_merchant(program.merchant).filter(program=program).order_by("pk"))
    return variant_pick(variants=variants, program=program, participant=participant)


def variant_pick(
    *, variants: list[ProgramVariant], program: Program, participant: Participant
) -> ProgramVariant | None:
    """variant_for with the program's variants (in id order) loaded already: for many participants at once."""
    if not variants:
        return None
    total = sum(v.weight for v in variants)
    bucket = int.from_bytes(hashlib.sha256(f"{program.pk}:{participant.pk}".encode()).digest()[:8], "big") % total
    for variant in variants:
        bucket -= variant.weight
        if bucket < 0:
            return variant
    return variants[-1]  # pragma: no cover - unreachable: the buckets cover the total


def participant_get(*, merchant, livemode: bool, ref: str, by: str | None = None) -> Participant:
    """By the shop's external id first (what shops use), else by our numeric id; `by` forces one of them."""
    scope = Participant.objects.for_merchant(merchant).filter(livemode=livemode)
    found = None
    if by in (None, "external_id"):
        found = scope.filter(external_id=ref).first()
    if found is None and by in (None, "id") and is_id(ref):
        found = scope.filter(pk=int(ref)).first()
    if found is None or found.status == Participant.Status.ERASED:
        raise NotFound("No participant with this id or external_id.")
    return found


class ParticipantFilter(django_filters.FilterSet):
    program = django_filters.CharFilter(method="filter_program", help_text="Participants of this program (slug).")
    email = django_filters.CharFilter(method="filter_email")
    external_id = django_filters.CharFilter()
    status = django_filters.ChoiceFilter(choices=Participant.Status.choices)
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Participant
        fields = ["program", "email", "external_id", "status", "created_after", "created_before"]

    def filter_program(self, queryset, name, value):
        return queryset.filter(codes__program__slug=value)

    def filter_email(self, queryset, name, value):
        return queryset.filter(email_normalized=normalize_email(value))


def program_texts(*, program: Program, language: str | None) -> dict[str, str]:
    """The program's customer-facing texts in `language`, each falling back to the program's own (default) text."""
    texts = {field: getattr(program, field) for field in ProgramText.TRANSLATED}
    if language:
        translated = (
            ProgramText.objects.for_merchant(program.merchant).filter(program=program, language=language).first()
        )
        if translated is not None:
            texts.update({field: value for field in ProgramText.TRANSLATED if (value := getattr(translated, field))})
    return texts
