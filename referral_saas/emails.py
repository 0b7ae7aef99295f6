"""Email addresses, checked by one rule at every door (a customer's address in the shop API, the portal and the
admin; a staff member's at sign-up and in their account pages), and the normalised form customers are compared in
(programs.identity uses it to recognise them)."""

from __future__ import annotations

import re
import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.utils.translation import gettext_lazy as _

# What an address column holds (RFC 5321's path limit): the address as given and its normalised form alike.
EMAIL_MAX_LENGTH = 254
GMAIL_DOMAINS = {"gmail.com", "googlemail.com"}
# A quoted local part that would be valid unquoted: the quotes change nothing.
_PLAIN_LOCAL = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~.-]+")


def normalize_email(email: str | None) -> str | None:
    """One form per inbox: Unicode look-alikes folded (NFKC: fullwidth letters read as ASCII ones), lowercase, a
    quoted local part unquoted when the quotes change nothing ("anna"@x = anna@x), the domain in its ASCII form
    (bücher.de = xn--bcher-kva.de), a +tag gone on every domain (anna+shop@outlook.com = anna@outlook.com: most
    providers deliver it to anna, and a cheat needs only one that does); for Gmail the dots go too. This is the
    comparison form only: mail goes to the address as given."""
    if not email:
        return None
    email = unicodedata.normalize("NFKC", email).strip().lower()
    local, sep, domain = email.rpartition("@")
    if not sep:
        return email
    if len(local) > 2 and local[0] == local[-1] == '"' and _PLAIN_LOCAL.fullmatch(local[1:-1]):
        local = local[1:-1]
    domain = ascii_domain(domain)
    if not local.startswith('"'):  # inside quotes a + is part of the name
        local = local.split("+", 1)[0] or local  # "+news@x" has no name before its tag: kept
    if domain in GMAIL_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


def ascii_domain(domain: str) -> str:
    """A domain as DNS sees it: lowercase ASCII, international names in their xn-- form, no trailing dot. A name
    that can't be encoded is returned lowercased as it is (it can't receive mail either)."""
    domain = unicodedata.normalize("NFKC", domain).strip().lower().rstrip(".")
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


class CustomerEmailValidator(EmailValidator):
    """A customer's address, as the API, the portal forms and the admin take it: Django's syntax check (no display
    name: "Anna <a@x.pl>" is refused) without an IP-literal or bare-host domain (a@[127.0.0.1], a@localhost: no
    customer's inbox), at most 254 characters as given, and a normalised form (what is compared and stored beside
    it) that is itself a valid address of at most 254 characters: NFKC expands some characters (U+FDFA is 18
    characters) and may turn a look-alike into an "@" or a space. Staff addresses (sign-up, the account pages) are
    held to the same rule: the user table's column is 254 characters too."""

    domain_allowlist: list[str] = []

    def __init__(self, message=None, code=None, allowlist=None):
        super().__init__(message=message or _("Enter a valid email address."), code=code, allowlist=allowlist)

    def validate_domain_part(self, domain_part: str) -> bool:
        return bool(self.domain_regex.match(domain_part))  # names only, no [IP] literals

    def __call__(self, value) -> None:
        if not isinstance(value, str) or len(value) > EMAIL_MAX_LENGTH:
            raise ValidationError(self.message, code=self.code, params={"value": value})
        super().__call__(value)
        normalized = normalize_email(value) or ""
        if len(normalized) > EMAIL_MAX_LENGTH or not normalized.isascii():
            raise ValidationError(self.message, code=self.code, params={"value": value})
        super().__call__(normalized)


validate_customer_email = CustomerEmailValidator()
