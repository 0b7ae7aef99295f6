"""The Polish, Romanian and Russian catalogs: complete where customers read, placeholder-safe, and compilable.

Customers (referrers, invited friends) and invited teammates must never see English on a pl/ro/ru page, so every
message used by a customer-facing template or module has to be translated and checked (not fuzzy). Staff-only
messages may stay empty (they fall back to English), but whatever is translated must keep its placeholders and
markup, or the page breaks at run time (KeyError in `%` formatting) or loses its emphasis.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from django.utils import translation

LOCALE_DIR = Path(settings.BASE_DIR) / "locale"
LANGUAGES = ["pl", "ro", "ru"]

# Files whose strings a shop's customers or invited teammates read (pages, emails, form labels, errors).
CUSTOMER_FACING = (
    "templates/portal/",
    "templates/tracking/",
    "templates/errors/",
    "templates/emails/",
    "templates/base.html",
    "templates/home.html",
    "templates/tenancy/invitation.html",
    "portal/",
    "programs/models.py",
    "templates/rewards/",
    "rewards/services/notify.py",
    "rewards/services/points.py",
    "rewards/offers.py",
    "tracking/models.py",
    "referral_saas/errors.py",
    "referral_saas/validators.py",
    "referral_saas/tenancy/models.py",
)

# %(name)s / %(n)d style (what {% blocktranslate %} variables become) and any {{ var }} left in a msgid.
PLACEHOLDER = re.compile(r"%\(\w+\)[#0 +\-]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]|\{\{\s*[^}]+?\s*\}\}")
HTML_TAG = re.compile(r"</?(?:a|b|br|code|em|i|p|span|strong)\b[^>]*>")
PLURAL_FORMS = {
    "pl": "nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);",
    "ro": "nplurals=3; plural=(n==1 ? 0 : (n==0 || (n%100>0 && n%100<20)) ? 1 : 2);",
    "ru": "nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);",
}


def _po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / "django.po"


def _catalog(lang: str):
    with _po_path(lang).open("rb") as po_file:
        return read_po(po_file, locale=lang)


def _raw_headers(lang: str) -> dict[str, str]:
    """The header entry as written (Babel normalises some values when it parses them)."""
    text = _po_path(lang).read_text(encoding="utf-8")
    header = text.split('msgid ""\nmsgstr ""\n', 1)[1].split("\n\n", 1)[0]
    joined = "".join(line[1:-1] for line in header.splitlines()).replace('\\"', '"')
    return dict(line.split(": ", 1) for line in joined.split("\\n") if line)


def _messages(lang: str) -> list:
    return [message for message in _catalog(lang) if message.id]


def _as_tuple(value) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _is_customer_facing(message) -> bool:
    return any(filename.startswith(CUSTOMER_FACING) for filename, _line in message.locations)


def _is_translated(message) -> bool:
    return any(_as_tuple(message.string))


def _placeholders(text: str) -> Counter:
    return Counter(re.sub(r"\s+", " ", found) for found in PLACEHOLDER.findall(text or ""))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalog_headers_name_the_language_and_its_three_plural_forms(lang):
    catalog = _catalog(lang)
    headers = _raw_headers(lang)

    assert headers["Language"] == lang
    assert headers["Content-Type"].lower() == "text/plain; charset=utf-8"
    assert headers["Plural-Forms"] == PLURAL_FORMS[lang]
    assert catalog.num_plurals == 3
    assert not catalog.fuzzy, "the header entry is still marked fuzzy"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_customer_facing_message_is_translated_and_reviewed(lang):
    customer_facing = [message for message in _messages(lang) if _is_customer_facing(message)]
    assert len(customer_facing) > 100, "customer-facing messages went missing from the catalog"

    untranslated = [message.id for message in customer_facing if not all(_as_tuple(message.string))]
    fuzzy = [message.id for message in customer_facing if message.fuzzy]

    assert untranslated == [], f"{lang}: customer-facing messages without a translation"
    assert fuzzy == [], f"{lang}: customer-facing messages still marked fuzzy"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_translations_keep_exactly_the_placeholders_of_the_source(lang):
    broken = []
    for message in filter(_is_translated, _messages(lang)):
        source_forms = _as_tuple(message.id)
        for index, translated in enumerate(_as_tuple(message.string)):
            if not translated:
                continue
            # plural form 0 follows the singular msgid, the others the msgid_plural
            source = source_forms[0] if index == 0 else source_forms[-1]
            if _placeholders(translated) != _placeholders(source):
                broken.append((source, translated))

    assert broken == [], f"{lang}: placeholders differ between source and translation"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_message_flagged_python_format_is_a_valid_format_in_both_languages(lang):
    """What `msgfmt --check` checks: a text with a literal % ("15% off") must not carry the python-format flag, and a
    flagged one must keep its conversions (Babel's own checker, the one compilemessages relies on)."""
    with open(LOCALE_DIR / lang / "LC_MESSAGES" / "django.po", "rb") as handle:
        catalog = read_po(handle)
    problems = [(message.id, [str(error) for error in errors]) for message, errors in catalog.check() if errors]
    assert problems == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_translations_keep_the_html_markup_of_the_source(lang):
    broken = [
        (message.id, message.string)
        for message in filter(_is_translated, _messages(lang))
        if not isinstance(message.id, tuple)
        and Counter(HTML_TAG.findall(message.id)) != Counter(HTML_TAG.findall(message.string))
    ]

    assert broken == [], f"{lang}: HTML tags differ between source and translation"


def test_romanian_uses_comma_below_diacritics():
    texts = [
        text
        for message in _messages("ro")
        for text in (message.string if isinstance(message.string, tuple) else (message.string,))
    ]
    cedilla = [text for text in texts if re.search("[şţŞŢ]", text or "")]

    assert cedilla == [], "use ș/ț (comma below), not ş/ţ (cedilla)"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_compiled_catalogs_translate_the_pages_at_run_time(lang):
    call_command("compiletranslations", force=True, verbosity=0)

    # Re-setting LOCALE_PATHS makes Django forget catalogs it may have loaded before the .mo files existed.
    with override_settings(LOCALE_PATHS=settings.LOCALE_PATHS), translation.override(lang):
        skip_link = translation.gettext("Skip to content")
        greeting = translation.gettext("Hi %(name)s!") % {"name": "Ana"}

    assert skip_link
    assert skip_link != "Skip to content"
    assert "Ana" in greeting
    assert not greeting.startswith("Hi ")
