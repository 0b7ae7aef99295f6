"""One normalised form per inbox: what self-referral, the blocklist and duplicate sign-ups compare."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from programs.identity import ascii_domain, normalize_email, validate_customer_email
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
        ("Jan+news@example.com", "jan@example.com"),  # +tags fold on every domain, not only at Gmail
        ("anna.k+1@outlook.com", "anna.k@outlook.com"),  # dots are Gmail's rule: kept elsewhere
        ("Anna+shop@Proton.me", "anna@proton.me"),
        ('"jan+news"@example.com', "jan@example.com"),  # the quotes change nothing, so the tag goes too
        ('"jan+news x"@example.com', '"jan+news x"@example.com'),  # inside needed quotes a + is part of the name
        ("+news@example.com", "+news@example.com"),  # nothing before the +: no tag to fold
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


@pytest.mark.django_db
def test_rows_stored_before_plus_tags_folded_everywhere_are_normalised_again_unless_they_collide(program):
    from importlib import import_module

    from django.apps import apps

    from fraud.models import BlocklistEntry
    from programs.models import Participant
    from tests.factories import join

    renormalize = import_module("tracking.migrations.0010_renormalize_email_plus_tags").renormalize
    people = Participant.objects.for_merchant(program.merchant)
    for external_id, email in [
        ("a", "anna+shop@outlook.com"),
        ("b", "bob+x@proton.me"),
        ("c", "bob@proton.me"),
    ]:
        join(program, email=f"{external_id}@placeholder.example", external_id=external_id)
        # what the earlier normalisation stored (+tags kept outside Gmail)
        people.filter(external_id=external_id).update(email=email, email_normalized=email)
    blocked = BlocklistEntry.objects.for_merchant(program.merchant).create(kind="email", value="cheat+1@wp.pl")

    renormalize(apps, None)

    stored = dict(people.values_list("external_id", "email_normalized"))
    assert stored == {"a": "anna@outlook.com", "b": "bob+x@proton.me", "c": "bob@proton.me"}
    assert dict(people.values_list("external_id", "email"))["a"] == "anna+shop@outlook.com"  # mail goes here still
    blocked.refresh_from_db()
    assert blocked.value == "cheat@wp.pl"


@pytest.mark.parametrize(
    "email",
    [
        "anna+shop@outlook.com",
        "anna@bücher.de",
        f"anna@{fullwidth('gmail')}.com",
        '"anna.kowalska"@gmail.com',
        "a" * 64 + "@" + "b" * 60 + ".example",
    ],
)
def test_addresses_customers_give_are_accepted(email):
    validate_customer_email(email)


@pytest.mark.parametrize(
    "email",
    [
        "Anna <anna@example.com>",  # display name
        "Name<me@example.com>",
        "a@[127.0.0.1]",  # IP literals: no customer's inbox
        "a@[IPv6:::1]",
        "a@127.0.0.1",
        "a@localhost",
        "a" * 250 + "@x.pl",  # too long as given
        "a@" + "\ufdfa" * 14 + ".pl",  # 20 characters typed; NFKC makes the domain 250+ with spaces in it
        "\ufdfa" * 60 + "@x.pl",
        "anna@evil\ufe6bgmail.com",  # a small commercial at: NFKC turns it into a second "@"
        "not-an-email",
    ],
)
def test_addresses_no_customer_could_give_are_refused(email):
    with pytest.raises(ValidationError):
        validate_customer_email(email)
