"""One normalised form per inbox: what self-referral, the blocklist and duplicate sign-ups compare."""

from __future__ import annotations

import pytest

from programs.identity import ascii_domain, normalize_email
from tests.factories import fullwidth


@pytest.mark.parametrize(
    ("email", "normalized"),
    [
        (" Anna.Kowalska+promo@GoogleMail.com ", "annakowalska@gmail.com"),
        (f"anna.kowalska@{fullwidth('gmail')}.com", "annakowalska@gmail.com"),  # fullwidth letters (NFKC)
        ('"anna.kowalska"@gmail.com', "annakowalska@gmail.com"),  # the quotes change nothing
        ('"anna kowalska"@example.com', '"anna kowalska"@example.com'),  # here they do: kept
        ("anna@bücher.de", "anna@xn--bcher-kva.de"),
        ("anna@xn--bcher-kva.de", "anna@xn--bcher-kva.de"),
        ("anna@Example.COM.", "anna@example.com"),
        ("Jan+news@example.com", "jan+news@example.com"),  # +tags are Gmail's rule, not everyone's
        ("", None),
        (None, None),
    ],
)
def test_one_form_per_inbox(email, normalized):
    assert normalize_email(email) == normalized


def test_a_domain_that_cannot_be_encoded_is_kept_lowercase():
    assert ascii_domain("EXA..MPLE.com") == "exa..mple.com"


@pytest.mark.django_db
def test_rows_stored_before_are_normalised_again_unless_two_people_would_collide(program):
    from importlib import import_module

    from django.apps import apps

    from programs.models import Participant
    from tests.factories import fullwidth, join

    renormalize = import_module("tracking.migrations.0009_renormalize_emails").renormalize
    people = Participant.objects.for_merchant(program.merchant)
    look_alike = fullwidth("example")
    for external_id, email in [
        ("a", f"anna@{look_alike}.com"),
        ("b", f"bob@{look_alike}.com"),
        ("c", "bob@example.com"),
    ]:
        join(program, email=f"{external_id}@placeholder.example", external_id=external_id)
        # what the earlier normalisation stored (lowercase only)
        people.filter(external_id=external_id).update(email=email, email_normalized=email.lower())

    renormalize(apps, None)

    stored = dict(Participant.objects.for_merchant(program.merchant).values_list("external_id", "email_normalized"))
    assert stored == {"a": "anna@example.com", "b": f"bob@{fullwidth('example')}.com", "c": "bob@example.com"}
