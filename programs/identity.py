"""How customers are recognised: emails and referral codes are compared in a normalised form."""

from __future__ import annotations

import re
import unicodedata

# The address rules live with the project's core (staff sign-up applies them too); customers are recognised by them.
from referral_saas.emails import (  # noqa: F401 - imported from here by the apps
    EMAIL_MAX_LENGTH,
    GMAIL_DOMAINS,
    CustomerEmailValidator,
    ascii_domain,
    normalize_email,
    validate_customer_email,
)

# Codes are read aloud and typed from screenshots: 0/O, 1/I/L look alike, so they compare equal.
_CODE_FOLD = str.maketrans({"0": "O", "1": "I", "L": "I"})
_CODE_STRIP = re.compile(r"[\s\-_]+")


def normalize_code(code: str) -> str:
    """Case-, dash- and look-alike-insensitive form of a code ("anna-7k3q" == "ANNA7K3Q")."""
    return _CODE_STRIP.sub("", code or "").upper().translate(_CODE_FOLD)


def ascii_letters(text: str) -> str:
    """'Łukasz' -> 'LUKASZ', 'Анна' -> '' (only A-Z survive)."""
    folded = unicodedata.normalize("NFKD", text.replace("ł", "l").replace("Ł", "L"))
    return "".join(ch for ch in folded.upper() if "A" <= ch <= "Z")
