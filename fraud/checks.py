"""The fraud checks: small pure functions over facts loaded once (selectors.conversion_facts / signup_facts).

Each check returns one Signal or None; the score is the sum of the weights, capped at 100. The weights are chosen
so that one weak hint approves, one strong hint (or two weak ones) waits for a review, and a strong hint plus
corroboration rejects at the default thresholds (review from 30, reject from 70):

    self_referral 100, blocked_participant 100, blocklist 100,
    referral_rejected 100                                           -> reject on their own
    same_payment_fingerprint 50, shared_device 50                   -> review; + shared_ip -> reject
    shared_ip 25 (40 when the user agent matches too)               -> approve alone (households share an IP)
    same_email_name 25 (anna.k@ at two domains)                     -> approve alone (namesakes); adds up
    same_address 35, disposable_email 30, velocity 30               -> review
    not_new_customer 20, fast_click_to_order 15                     -> approve alone, add up with others
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from disposable_email_domains import blocklist as DISPOSABLE_DOMAINS
from django.utils.translation import gettext_lazy as _

from programs.identity import ascii_domain
from programs.models import Participant

WEIGHTS = {
    "self_referral": 100,
    "referral_rejected": 100,
    "blocked_participant": 100,
    "blocklist": 100,
    "same_payment_fingerprint": 50,
    "shared_device": 50,
    "same_address": 35,
    "shared_ip": 25,
    "shared_ip_and_user_agent": 40,
    "same_email_name": 25,
    "disposable_email": 30,
    "velocity": 30,
    "not_new_customer": 20,
    "fast_click_to_order": 15,
}

# How the admin names each signal (the stored detail stays in English, as data).
LABELS = {
    "self_referral": _("Self-referral"),
    "referral_rejected": _("Referral rejected as fraud earlier"),
    "blocked_participant": _("Blocked referrer"),
    "blocklist": _("On your blocklist"),
    "same_payment_fingerprint": _("Same payment method as the referrer"),
    "shared_device": _("Same device as the referrer"),
    "same_address": _("Same address as the referrer"),
    "shared_ip": _("Same IP address as the referrer"),
    "same_email_name": _("Same email name as the referrer at another domain"),
    "disposable_email": _("Disposable email address"),
    "velocity": _("Too many referred orders"),
    "not_new_customer": _("Not a new customer"),
    "fast_click_to_order": _("Ordered right after the click"),
}


@dataclass(frozen=True)
class Signal:
    name: str
    weight: int
    detail: str

    def as_dict(self) -> dict:
        return {"name": self.name, "weight": self.weight, "detail": self.detail}


@dataclass(frozen=True)
class Trace:
    """Something the referrer left behind: a sighting (portal / participant API) or one of their own orders."""

    source: str  # "sighting" | "order"
    ip_hash: str
    ip: str  # raw IP (own orders only; sightings keep the hash)
    user_agent: str
    device_id: str
    payment_fingerprint: str
    address_hash: str


@dataclass
class Facts:
    """Everything the checks look at, loaded in a few queries before any check runs."""

    rules: object  # FraudSettings (saved, or the defaults)
    referrer_id: int
    referrer_status: str
    referrer_external_id: str | None
    referrer_email: str | None  # normalised
    referee_participant_id: int | None
    friend_external_id: str | None
    friend_email: str | None  # normalised
    # The friend's IP hashes (order, click) with the user agents seen with each.
    friend_ips: dict[str, set[str]] = field(default_factory=dict)
    friend_raw_ips: list[str] = field(default_factory=list)
    device_ids: tuple[str, ...] = ()  # the friend's: the order's (from the shop), the click's (the platform's cookie)
    payment_fingerprint: str = ""
    address_hash: str = ""
    is_new_customer: bool = True
    ordered_at: datetime | None = None
    clicked_at: datetime | None = None
    referrer_traces: list[Trace] = field(default_factory=list)
    recent_last_hour: int = 0
    recent_last_day: int = 0
    velocity_what: str = "attributed orders"
    referral_rejected_as_fraud: bool = False  # the order arrived after the friend's referral was rejected as fraud
    blocklisted: list[str] = field(default_factory=list)  # human-readable matches, e.g. "friend's email domain"


def email_domain(email: str | None) -> str:
    """The domain of an address in its ASCII form (normalised emails have it already)."""
    if not email or "@" not in email:
        return ""
    domain = email.rpartition("@")[2]
    return domain.lower() if domain.isascii() else ascii_domain(domain)


def domain_and_parents(domain: str) -> list[str]:
    """'a.mail.example.com' -> ['a.mail.example.com', 'mail.example.com', 'example.com'] (a blocked domain covers
    its subdomains)."""
    labels = domain.strip(".").split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)] if len(labels) > 1 else []


def email_name(email: str | None) -> str:
    """The part of a normalised address before the @ (its +tag gone already), without dots: what a person picks
    as their name at every provider ("anna.k" at Gmail is stored as "annak")."""
    if not email or "@" not in email:
        return ""
    return email.rpartition("@")[0].strip('"').replace(".", "")


# --- the checks -----------------------------------------------------------------------------------------------------


def _signal(name: str, detail: str, weight_key: str | None = None) -> Signal:
    return Signal(name=name, weight=WEIGHTS[weight_key or name], detail=detail)


def check_self_referral(f: Facts) -> Signal | None:
    if f.referee_participant_id is not None and f.referee_participant_id == f.referrer_id:
        return _signal("self_referral", "The friend's participant account is the referrer's.")
    if f.friend_external_id and f.friend_external_id == f.referrer_external_id:
        return _signal("self_referral", "The friend has the referrer's customer id.")
    if f.friend_email and f.friend_email == f.referrer_email:
        return _signal("self_referral", "The friend has the referrer's email address.")
    return None


def check_same_email_name(f: Facts) -> Signal | None:
    """anna.k@gmail.com refers anna.k@outlook.com: the same person with a second mailbox (or a namesake: alone it
    only adds up with other hints)."""
    name = email_name(f.friend_email)
    friend_domain, referrer_domain = email_domain(f.friend_email), email_domain(f.referrer_email)
    if not name or name != email_name(f.referrer_email) or friend_domain == referrer_domain:
        return None
    shown = f.friend_email.rpartition("@")[0]
    return _signal(
        "same_email_name",
        f"The friend's email has the referrer's name before the @ ({shown}) at another domain: "
        f"{friend_domain}, the referrer's {referrer_domain}.",
    )


def check_referral_rejected(f: Facts) -> Signal | None:
    if f.referral_rejected_as_fraud:
        return _signal("referral_rejected", "The friend's referral was rejected as fraud before this order.")
    return None


def check_blocked_participant(f: Facts) -> Signal | None:
    if f.referrer_status == Participant.Status.BLOCKED:
        return _signal("blocked_participant", "The referrer is blocked.")
    return None


def check_blocklist(f: Facts) -> Signal | None:
    if f.blocklisted:
        return _signal("blocklist", "On the blocklist: " + ", ".join(f.blocklisted) + ".")
    return None


def check_shared_ip(f: Facts) -> Signal | None:
    if not f.friend_ips:
        return None
    matches = [t for t in f.referrer_traces if t.ip_hash and t.ip_hash in f.friend_ips]
    if not matches:
        return None
    where = " and ".join(sorted({"sign-up" if t.source == "sighting" else "order" for t in matches}))
    same_agent = [t for t in matches if t.user_agent and t.user_agent in f.friend_ips[t.ip_hash]]
    if same_agent:
        return _signal(
            "shared_ip",
            f"The friend used the referrer's IP address and browser (seen at the referrer's {where}).",
            "shared_ip_and_user_agent",
        )
    return _signal("shared_ip", f"The friend used the referrer's IP address (seen at the referrer's {where}).")


def check_shared_device(f: Facts) -> Signal | None:
    devices = {d for d in f.device_ids if d}
    if devices and any(t.device_id in devices for t in f.referrer_traces):
        return _signal("shared_device", "The friend's order or referral click came from a device the referrer used.")
    return None


def check_same_payment_fingerprint(f: Facts) -> Signal | None:
    if f.payment_fingerprint and any(
        t.source == "order" and t.payment_fingerprint == f.payment_fingerprint for t in f.referrer_traces
    ):
        return _signal("same_payment_fingerprint", "The friend paid with a payment method the referrer used.")
    return None


def check_same_address(f: Facts) -> Signal | None:
    if f.address_hash and any(t.source == "order" and t.address_hash == f.address_hash for t in f.referrer_traces):
        return _signal("same_address", "The order goes to an address the referrer ordered to.")
    return None


def check_disposable_email(f: Facts) -> Signal | None:
    if not f.rules.check_disposable_email:
        return None
    domain = email_domain(f.friend_email)
    if any(d in DISPOSABLE_DOMAINS for d in domain_and_parents(domain)):
        return _signal("disposable_email", f"The friend's email is at {domain}, a disposable-mailbox domain.")
    return None


def check_velocity(f: Facts) -> Signal | None:
    hour, day = f.rules.velocity_per_hour, f.rules.velocity_per_day
    what = f.velocity_what
    if f.recent_last_hour > hour:
        return _signal("velocity", f"The referrer has {f.recent_last_hour} {what} in an hour (limit {hour}).")
    if f.recent_last_day > day:
        return _signal("velocity", f"The referrer has {f.recent_last_day} {what} in a day (limit {day}).")
    return None


def check_fast_click_to_order(f: Facts) -> Signal | None:
    if f.ordered_at is None or f.clicked_at is None:
        return None
    seconds = (f.ordered_at - f.clicked_at).total_seconds()
    if seconds < f.rules.min_seconds_click_to_order:
        return _signal("fast_click_to_order", f"Ordered {seconds:.0f} s after the referral click.")
    return None


def check_not_new_customer(f: Facts) -> Signal | None:
    if not f.is_new_customer:
        return _signal("not_new_customer", "The friend had ordered before.")
    return None


Check = Callable[[Facts], Signal | None]

CONVERSION_CHECKS: list[Check] = [
    check_referral_rejected,
    check_self_referral,
    check_blocked_participant,
    check_blocklist,
    check_shared_ip,
    check_shared_device,
    check_same_email_name,
    check_same_payment_fingerprint,
    check_same_address,
    check_disposable_email,
    check_velocity,
    check_fast_click_to_order,
    check_not_new_customer,
]

# At a sign-up there is no order: no payment, address, order time or customer history yet; the device is the click's.
SIGNUP_CHECKS: list[Check] = [
    check_self_referral,
    check_blocked_participant,
    check_blocklist,
    check_shared_ip,
    check_shared_device,
    check_same_email_name,
    check_disposable_email,
    check_velocity,
]


def run_checks(facts: Facts, checks: list[Check]) -> tuple[int, list[Signal]]:
    """(score, signals): the score is the sum of the signals' weights, at most 100."""
    signals = [s for s in (check(facts) for check in checks) if s is not None]
    return min(100, sum(s.weight for s in signals)), signals
