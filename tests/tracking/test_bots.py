"""Bot / link-preview detection used on the click-redirect hot path (no database needed)."""

from __future__ import annotations

import re

import crawleruseragents
import pytest

from tracking.bots import EXCLUDED_PATTERNS, MAX_USER_AGENT_LENGTH, _lower_pattern, is_bot

# Real people: desktop and mobile browsers, and the in-app browsers of social / chat apps
# (a person tapping a shared referral link inside Instagram, Facebook, WhatsApp, ...).
REAL_BROWSERS: dict[str, str] = {
    "chrome-windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36"
    ),
    "edge-windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
    ),
    "firefox-windows": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "firefox-macos": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
    "safari-macos": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Safari/605.1.15"
    ),
    "chrome-linux": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
    ),
    "opera-windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0"
    ),
    "safari-iphone": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Mobile/15E148 Safari/604.1"
    ),
    "safari-ipad": (
        "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.6 Mobile/15E148 Safari/604.1"
    ),
    "chrome-iphone": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1"
    ),
    "chrome-android": (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36"
    ),
    "firefox-android": "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
    "samsung-internet": (
        "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/27.0 Chrome/125.0.0.0 Mobile Safari/537.36"
    ),
    "amazon-silk": (
        "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Silk/130.4.1 like Chrome/130.0.6723.102 Safari/537.36"
    ),
    "google-app-iphone": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "GSA/325.0.650918423 Mobile/15E148 Safari/604.1"
    ),
    "instagram-iphone": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 Instagram 339.0.3.12.91 (iPhone14,5; iOS 17_5_1; en_US; en; scale=3.00; 1170x2532; "
        "621137627; IABMV/1)"
    ),
    # Carries the Android build id "AP3A.240617.008", a pattern of the crawler list (excluded).
    "instagram-android": (
        "Mozilla/5.0 (Linux; Android 15; CPH2557 Build/AP3A.240617.008; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/142.0.7444.142 Mobile Safari/537.36 Instagram 406.0.0.58.159 "
        "Android (35/15; 480dpi; 1080x2400; OPPO; CPH2557; OP573DL1; mt6833; en_MY; 822918295; IABMV/1) NV/1"
    ),
    "facebook-iphone": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.38.109;FBBV/623541513;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;"
        "FBSV/17.5;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;FBRV/625206224;IABMV/1]"
    ),
    "facebook-android": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240805.005; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/127.0.6533.103 Mobile Safari/537.36 "
        "[FB_IAB/FB4A;FBAV/477.0.0.49.74;IABMV/1;]"
    ),
    # Meta's in-app browser ("MetaIAB"), listed as a previewer by the crawler list (excluded).
    "facebook-android-metaiab": (
        "Mozilla/5.0 (Linux; Android 16; Pixel 10 Pro XL Build/CP1A.260305.018; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/146.0.7680.174 Mobile Safari/537.36 MetaIAB Facebook"
    ),
    "messenger-iphone": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 [FBAN/MessengerForiOS;FBAV/466.0.0.38.108;FBBV/614839870;FBDV/iPhone14,7;FBMD/iPhone;"
        "FBSN/iOS;FBSV/17.5;FBSS/3;FBCR/;FBID/phone;FBLC/en_US;FBOP/5]"
    ),
    "whatsapp-android-webview": (
        "Mozilla/5.0 (Linux; Android 14; SM-A546B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.134 Mobile Safari/537.36 WhatsApp/2.24.13.80"
    ),
    "viber-android-webview": (
        "Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/125.0.6422.165 Mobile Safari/537.36 Viber/22.4.0.0"
    ),
    "snapchat-iphone": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 Snapchat/13.3.0.44 (like Safari/8617.1.17.10.9, panda)"
    ),
    "tiktok-iphone": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 musical_ly_35.1.0 JsSdk/2.0 NetType/WIFI Channel/App Store ByteLocale/en Region/US "
        "ByteFullLocale/en WKWebView/1 BytedanceWebview/d8a21c6"
    ),
    "linkedin-iphone": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 [LinkedInApp]/9.29.8437"
    ),
    "twitter-iphone": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 Twitter for iPhone/10.50"
    ),
    "telegram-android": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
        "Mobile Safari/537.36 Telegram-Android/10.14.5 (Google Pixel 7; Android 14; SDK 34; AVERAGE)"
    ),
    "pinterest-android": (
        "Mozilla/5.0 (Linux; Android 13; SM-G991B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/125.0.6422.165 Mobile Safari/537.36 [Pinterest/Android]"
    ),
    "tumblr-android": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 7 Build/AP2A.240805.005; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/127.0.6533.103 Mobile Safari/537.36 Tumblr/35.3.0.110"
    ),
    "line-iphone": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 Safari Line/14.6.0"
    ),
    # Ends in "Sonic", a (too broad) pattern of the crawler list (excluded).
    "slack-desktop": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Slack/4.41.97 "
        "Chrome/130.0.6723.91 Electron/33.2.0 Safari/537.36 Sonic"
    ),
}

# Crawlers, link-preview fetchers and scripted HTTP clients: redirected, never counted.
BOTS: dict[str, str] = {
    "slackbot": "Slackbot 1.0 (+https://api.slack.com/robots)",
    "slackbot-linkexpanding": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "slack-imgproxy": "Slack-ImgProxy (+https://api.slack.com/robots)",
    "whatsapp": "WhatsApp/2.23.20.0 A",
    "whatsapp-ios": "WhatsApp/2.24.13.78 i",
    "facebookexternalhit": "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "facebot": "Facebot/1.0",
    "meta-externalagent": "meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)",
    "twitterbot": "Twitterbot/1.0",
    "telegrambot": "TelegramBot (like TwitterBot)",
    "discordbot": "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "linkedinbot": "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "skypeuripreview": (
        "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 skype-url-preview@microsoft.com"
    ),
    "vkshare": "Mozilla/5.0 (compatible; vkShare; +http://vk.com/dev/Share)",
    "pinterestbot": "Mozilla/5.0 (compatible; Pinterestbot/1.0; +http://www.pinterest.com/bot.html)",
    "pinterest": "Pinterest/0.2 (+http://www.pinterest.com/bot.html)",
    "redditbot": "Mozilla/5.0 (compatible; redditbot/1.0; +http://www.reddit.com/feedback)",
    "applebot": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)"
    ),
    "googlebot": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "googlebot-smartphone": (
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    ),
    "bingbot": (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
        "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36"
    ),
    "viber": "Viber",
    "snapchat": (
        "Mozilla/5.0 (Linux; Android 10) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.77 "
        "Mobile Safari/537.36 (compatible; Snap URL Preview Service; bot; snapchat; https://developers.snap.com/robots)"
    ),
    "snapurlpreview": "Mozilla/5.0 (compatible; SnapURLPreview/1.0; +https://www.snapchat.com)",
    "imessage": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) "
        "Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/2.0"
    ),
    "curl": "curl/8.5.0",
    "wget": "Wget/1.21.4",
    "python-requests": "python-requests/2.32.3",
    "python-urllib": "Python-urllib/3.11",
    "go-http-client": "Go-http-client/2.0",
    "okhttp": "okhttp/4.12.0",
    "axios": "axios/1.7.7",
    "node-fetch": "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "headless-chrome": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36"
    ),
    "phantomjs": (
        "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1"
    ),
}


@pytest.mark.parametrize("user_agent", REAL_BROWSERS.values(), ids=REAL_BROWSERS.keys())
def test_real_browsers_are_not_bots(user_agent: str) -> None:
    assert is_bot(user_agent) is False


@pytest.mark.parametrize("user_agent", BOTS.values(), ids=BOTS.keys())
def test_bots_previewers_and_http_clients_are_bots(user_agent: str) -> None:
    assert is_bot(user_agent) is True


@pytest.mark.parametrize("user_agent", [None, "", " ", "\t"])
def test_missing_or_empty_user_agent_is_a_bot(user_agent: str | None) -> None:
    assert is_bot(user_agent) is True


@pytest.mark.parametrize(
    "user_agent",
    [
        "Mozilla/5.0 (compatible; GOOGLEBOT/2.1; +http://www.google.com/bot.html)",
        "mozilla/5.0 (compatible; discordbot/2.0; +https://discordapp.com)",
        "CURL/8.5.0",
        "whatsapp/2.23.20.0 A",
        "FACEBOOKEXTERNALHIT/1.1",
        "Mozilla/5.0 (compatible; SeMrUsHbOt/7~bl; +http://www.semrush.com/bot.html)",
    ],
)
def test_matching_is_case_insensitive(user_agent: str) -> None:
    assert is_bot(user_agent) is True


def test_case_changes_do_not_turn_a_browser_into_a_bot() -> None:
    chrome = REAL_BROWSERS["chrome-windows"]
    assert is_bot(chrome.upper()) is False
    assert is_bot(chrome.lower()) is False


def test_very_long_user_agent_returns_without_error() -> None:
    padded_browser = REAL_BROWSERS["chrome-android"] + " x" * 5_000  # ~10 KB: no browser sends that
    assert len(padded_browser) > 10_000
    assert is_bot(padded_browser) is True
    assert is_bot("spider " * 1_500) is True


def test_long_user_agent_under_the_limit_is_still_matched() -> None:
    browser = REAL_BROWSERS["chrome-android"]
    padding = " spider" * ((MAX_USER_AGENT_LENGTH - len(browser)) // 7)
    assert len(browser + padding) <= MAX_USER_AGENT_LENGTH
    assert is_bot(browser + padding) is False
    assert is_bot(browser + padding[:-20] + " Googlebot/2.1") is True


def test_every_listed_crawler_instance_is_detected() -> None:
    """The patterns folded into one lowercase regex still match what the package says they match."""
    missed = [
        (entry["pattern"], instance)
        for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA
        if entry["pattern"] not in EXCLUDED_PATTERNS
        for instance in entry["instances"]
        if re.search(entry["pattern"], instance, re.IGNORECASE) and not is_bot(instance)
    ]
    assert missed == []


def test_lowercasing_a_pattern_keeps_its_escapes() -> None:
    assert _lower_pattern(r"Foo\S\d[wW]get\/[A-Z]") == r"foo\S\dwget\/[a-z]"
