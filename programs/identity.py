"""How customers are recognised: emails and referral codes are compared in a normalised form."""

from __future__ import annotations

import re
import unicodedata

GMAIL_DOMAINS = {"gmail.com", "googlemail.com"}

# Codes are read aloud and typed from screenshots: 0/O, 1/I/L look alike, so they compare equal.
_CODE_FOLD = str.maketrans({"0": "O", "1": "I", "L": "I"})
_CODE_STRIP = re.compile(r"[\s\-_]+")


def normalize_email(email: str | None) -> str | None:
    """Lowercase; for Gmail the dots and +tag of the local part go (they reach the same inbox)."""
    if not email:
        return None
    email = email.strip().lower()
    local, sep, domain = email.rpartition("@")
    if not sep:
        return email
    if domain in GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


def normalize_code(code: str) -> str:
    """Case-, dash- and look-alike-insensitive form of a code ("anna-7k3q" == "ANNA7K3Q")."""
    return _CODE_STRIP.sub("", code or "").upper().translate(_CODE_FOLD)


def ascii_letters(text: str) -> str:
    """'Łukasz' -> 'LUKASZ', 'Анна' -> '' (only A-Z survive)."""
    folded = unicodedata.normalize("NFKD", text.replace("ł", "l").replace("Ł", "L"))
    return "".join(ch for ch in folded.upper() if "A" <= ch <= "Z")
