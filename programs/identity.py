"""How customers are recognised: emails and referral codes are compared in a normalised form."""

from __future__ import annotations

import re
import unicodedata

GMAIL_DOMAINS = {"gmail.com", "googlemail.com"}
# A quoted local part that would be valid unquoted: the quotes change nothing.
_PLAIN_LOCAL = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~.-]+")

# Codes are read aloud and typed from screenshots: 0/O, 1/I/L look alike, so they compare equal.
_CODE_FOLD = str.maketrans({"0": "O", "1": "I", "L": "I"})
_CODE_STRIP = re.compile(r"[\s\-_]+")


def normalize_email(email: str | None) -> str | None:
    """One form per inbox: Unicode look-alikes folded (NFKC: fullwidth letters read as ASCII ones), lowercase, a
    quoted local part unquoted when the quotes change nothing ("anna"@x = anna@x), the domain in its ASCII form
    (bücher.de = xn--bcher-kva.de); for Gmail the dots and +tag of the local part go (they reach the same inbox)."""
    if not email:
        return None
    email = unicodedata.normalize("NFKC", email).strip().lower()
    local, sep, domain = email.rpartition("@")
    if not sep:
        return email
    if len(local) > 2 and local[0] == local[-1] == '"' and _PLAIN_LOCAL.fullmatch(local[1:-1]):
        local = local[1:-1]
    domain = ascii_domain(domain)
    if domain in GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
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


def normalize_code(code: str) -> str:
    """Case-, dash- and look-alike-insensitive form of a code ("anna-7k3q" == "ANNA7K3Q")."""
    return _CODE_STRIP.sub("", code or "").upper().translate(_CODE_FOLD)


def ascii_letters(text: str) -> str:
    """'Łukasz' -> 'LUKASZ', 'Анна' -> '' (only A-Z survive)."""
    folded = unicodedata.normalize("NFKD", text.replace("ł", "l").replace("Ł", "L"))
    return "".join(ch for ch in folded.upper() if "A" <= ch <= "Z")
