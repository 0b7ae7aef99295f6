"""Fast bot / link-preview detection for the click-redirect hot path (``GET /r/<code>``).

Every click on a referral link runs through :func:`is_bot`. Bots, link-preview fetchers
(Slack, WhatsApp, iMessage, Facebook, ...) and scripted HTTP clients still get the redirect,
but their request must not be counted as a click: a link pasted into a chat is fetched by the
preview service before (and often without) any person opening it, which would inflate click
counts and skew conversion rates and fraud scores.

Because it runs on every click it has to be cheap:

* the maintained pattern list of the ``crawler-user-agents`` package
  (monperrus/crawler-user-agents) plus a few explicit patterns of our own are folded at import
  into ONE compiled regex, shaped as a prefix trie so the regex engine rejects most positions
  of a user agent with one character comparison instead of trying ~1,500 alternatives;
* matching is case-insensitive by lowercasing the user agent once and lowercasing the
  patterns at import (much faster than ``re.IGNORECASE``);
* results are memoised per user-agent string with an LRU cache, since real traffic repeats a
  small set of user agents.

People tapping a shared link inside a social app's in-app browser (Instagram, Facebook,
WhatsApp, ...) are real clicks and must NOT be flagged; list patterns that would misfire on
them are excluded in :data:`EXCLUDED_PATTERNS`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache

import crawleruseragents

__all__ = ["EXCLUDED_PATTERNS", "EXTRA_PATTERNS", "MAX_USER_AGENT_LENGTH", "is_bot"]

# Real user agents stay far below this (in-app browsers, the longest, are ~500 chars).
# Anything longer is not a browser: it is treated as a bot without being matched or cached,
# which also caps the memory the LRU cache can hold (4096 entries x this length).
MAX_USER_AGENT_LENGTH = 2048

# Patterns of the package list that misfire on real people, matched on the exact pattern text.
EXCLUDED_PATTERNS: frozenset[str] = frozenset(
    {
        # An Android build id (Pixel/OPPO, Android 15): its listed instance is a real
        # Instagram in-app browser, so it flags every person on that build inside any WebView.
        "AP3A\\.240617\\.008",
        # "MetaIAB" is Meta's In-App Browser: a person opening a link inside Facebook.
        "MetaIAB Facebook",
        # Fluid is a site-specific browser (a WebKit wrapper a person uses), not a crawler.
        "Fluid",
        # Unanchored "sonic" also hits the Slack desktop app, whose UA ends in "Sonic";
        # re-added narrower ("sonic/", "ranksonic") in EXTRA_PATTERNS.
        "Sonic",
        # Unanchored, these also hit the in-app browsers / desktop apps of these services,
        # whose UAs carry the app name. Re-added anchored in EXTRA_PATTERNS: their
        # preview fetchers send UAs that *start* with the name ("WhatsApp/2.23.20.0 A").
        "WhatsApp",
        "Viber",
        "Tumblr\\/",
        "Notion\\/",
        "Bluesky\\/",
    }
)

# Our own patterns, already lowercase (matched against the lowercased UA). Most are in the
# package list too; they are kept here so the previewers we care about stay covered even if
# the list changes.
EXTRA_PATTERNS: tuple[str, ...] = (
    # Link-preview fetchers of chat / social apps.
    "slackbot",  # Slackbot 1.0, Slackbot-LinkExpanding 1.0
    "slack-imgproxy",
    "^whatsapp",
    "facebookexternalhit",  # also Apple's iMessage preview UA
    "facebot",
    "facebookbot",
    "meta-externalagent",
    "meta-externalfetcher",
    "meta-externalhit",
    "twitterbot",
    "telegrambot",
    "discordbot",
    "linkedinbot",
    "skypeuripreview",
    "vkshare",
    "pinterestbot",
    "pinterest/0\\.",
    "pinterest\\.com/bot",
    "redditbot",
    "^viber",
    "snap url preview",
    "snapurlpreview",
    "snapchatads",
    "^tumblr/",
    "^notion/",
    "^bluesky/",
    "bingpreview",
    "google web preview",
    "microsoftpreview",
    "yahoo link preview",
    # Crawlers whose list pattern is excluded above for being too broad.
    "sonic/",
    "ranksonic",
    # Search engines.
    "applebot",
    "googlebot",
    "bingbot",
    "yandexbot",
    "duckduckbot",
    "baiduspider",
    # Generic HTTP clients and headless browsers.
    "curl/",
    "^curl",
    "wget",
    "python-requests",
    "python-urllib",
    "python-httpx",
    "aiohttp",
    "go-http-client",
    "okhttp",
    "axios",
    "node-fetch",
    "undici",
    "headlesschrome",
    "phantomjs",
)

_METACHARS = frozenset(".^$*+?{}[]()|\\")
_QUANTIFIERS = frozenset("*+?{")
# "[wW]" (one letter in both cases) is just that letter once we match case-insensitively.
_CASE_PAIR_CLASS = re.compile(r"(?<!\\)\[([A-Za-z])([A-Za-z])\]")


def _lower_pattern(pattern: str) -> str:
    """Lowercase a regex, leaving escapes such as ``\\S`` / ``\\D`` untouched."""
    pattern = _CASE_PAIR_CLASS.sub(
        lambda m: m.group(1).lower() if m.group(1).lower() == m.group(2).lower() else m.group(0),
        pattern,
    )
    out: list[str] = []
    escaped = False
    for ch in pattern:
        out.append(ch if escaped else ch.lower())
        escaped = not escaped and ch == "\\"
    # Named groups / backreferences are spelled with an uppercase P.
    return "".join(out).replace("(?p<", "(?P<").replace("(?p=", "(?P=")


def _split_alternatives(pattern: str) -> Iterator[str]:
    """Split a regex on its top-level ``|`` (not inside groups, classes or escapes)."""
    depth = 0
    in_class = escaped = False
    start = 0
    for i, ch in enumerate(pattern):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            yield pattern[start:i]
            start = i + 1
    yield pattern[start:]


def _literal_prefix(branch: str) -> tuple[str, str]:
    """Split a regex branch into its leading literal text and the regex remainder."""
    literal: list[str] = []
    i = 0
    while i < len(branch):
        ch = branch[i]
        if ch == "\\":
            if i + 1 >= len(branch) or branch[i + 1].isalnum():
                break  # \d, \S, \1, ...: a real regex construct
            ch, step = branch[i + 1], 2
        elif ch in _METACHARS:
            break
        else:
            step = 1
        if i + step < len(branch) and branch[i + step] in _QUANTIFIERS:
            break  # the quantifier applies to this character: keep both in the remainder
        literal.append(ch)
        i += step
    return "".join(literal), branch[i:]


class _TrieNode:
    __slots__ = ("children", "tails", "terminal")

    def __init__(self) -> None:
        self.children: dict[str, _TrieNode] = {}
        self.tails: set[str] = set()
        self.terminal = False

    def add(self, literal: str, tail: str) -> None:
        node = self
        for ch in literal:
            if node.terminal:
                return  # a shorter pattern already matches everything this one would
            node = node.children.setdefault(ch, _TrieNode())
        if node.terminal:
            return
        if tail:
            node.tails.add(tail)
        else:
            # Any match of a longer pattern contains this one: only "did anything match" counts.
            node.terminal = True
            node.children.clear()
            node.tails.clear()

    def to_regex(self) -> str:
        if self.terminal:
            return ""
        alternatives = [re.escape(ch) + child.to_regex() for ch, child in sorted(self.children.items())]
        alternatives.extend(sorted(self.tails))
        if len(alternatives) == 1:
            return alternatives[0]
        return "(?:" + "|".join(alternatives) + ")"


def _build_regex(patterns: Iterable[str]) -> re.Pattern[str]:
    """Fold lowercase regexes into one: a trie on their literal prefixes, anchored ones apart."""
    floating = _TrieNode()
    anchored = _TrieNode()
    for pattern in patterns:
        for branch in _split_alternatives(pattern):
            trie = floating
            if branch.startswith("^"):
                trie, branch = anchored, branch[1:]
            if not branch:
                continue  # an empty alternative would match every user agent
            trie.add(*_literal_prefix(branch))
    parts = [floating.to_regex()]
    if anchored.children or anchored.tails:
        parts.append("^" + anchored.to_regex())
    return re.compile("|".join(parts))


def _patterns() -> list[str]:
    listed = (entry["pattern"] for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA)
    return [_lower_pattern(p) for p in listed if p not in EXCLUDED_PATTERNS] + list(EXTRA_PATTERNS)


_BOT_RE = _build_regex(_patterns())


@lru_cache(maxsize=4096)
def _matches_bot(user_agent: str) -> bool:
    return _BOT_RE.search(user_agent.lower()) is not None


def is_bot(user_agent: str | None) -> bool:
    """Return True if ``user_agent`` (the raw User-Agent header) is a bot, previewer or script.

    An empty, missing or oversized user agent counts as a bot: browsers always send a short one.
    Matching is case-insensitive.
    """
    if not user_agent or len(user_agent) > MAX_USER_AGENT_LENGTH:
        return True
    user_agent = user_agent.strip()
    if not user_agent:
        return True
    return _matches_bot(user_agent)
