"""Names and titles are one line of text: the rule, and the field that carries it into models, forms and the API.

A shop, program, variant, reward rule, catalog item, coupon pool, API key or participant name is shown in lists,
emails and their subjects. A line break in one is never meant, and in an email subject it is a header injection
(Django refuses it with BadHeaderError: every email built from that name was a 500). So these texts refuse control
characters wherever they are set (admin forms, the API, the portal, services and commands), and a subject built
from stored text goes through `single_line` as well, so that a row saved before the rule cannot break a send.
"""

from __future__ import annotations

import re
import unicodedata

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

# Cc: C0/C1 controls (NUL, tab, CR, LF, DEL, ...); Cf: invisible format characters (bidi overrides that reorder
# what a reader sees, zero-width ones); Cs: lone surrogates (PostgreSQL cannot store them); Zl / Zp: U+2028 and
# U+2029, line and paragraph separators.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

CONTROL_CHARACTERS_MESSAGE = _("Must be one line, without control characters (line breaks, tabs and the like).")


def has_control_characters(text: str) -> bool:
    return any(unicodedata.category(char) in REFUSED_CATEGORIES for char in text)


def validate_single_line(value) -> None:
    """Django validator (models, forms, and DRF fields through `validators=[...]`)."""
    if isinstance(value, str) and has_control_characters(value):
        raise ValidationError(CONTROL_CHARACTERS_MESSAGE, code="control_characters")


def require_single_line(**values: str | None) -> None:
    """For services, which every door goes through: a ValidationFailed (400, or a form/command error) naming each
    field whose value has control characters, e.g. `require_single_line(name=name)`."""
    from referral_saas.errors import ValidationFailed

    wrong = {
        field: [str(CONTROL_CHARACTERS_MESSAGE)]
        for field, value in values.items()
        if value and has_control_characters(value)
    }
    if wrong:
        raise ValidationFailed(fields=wrong)


_SPACES = re.compile(r"\s+")


def single_line(text: str) -> str:
    """`text` with control characters as spaces and runs of whitespace as one space: for an email subject or
    another header built from stored text."""
    cleaned = "".join(" " if unicodedata.category(char) in REFUSED_CATEGORIES else char for char in str(text))
    return _SPACES.sub(" ", cleaned).strip()


class SingleLineCharField(models.CharField):
    """A CharField whose value must be one line (`validate_single_line`), for names and titles.

    Migrations see a plain CharField: a validator is no part of the schema, so adding this rule to a field (or
    changing it) needs no migration.
    """

    default_validators = [validate_single_line]

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.CharField", args, kwargs
