"""The merchant's and the friend's journey through gunicorn, a Celery worker and beat (issue 18), over HTTP:

- the owner opens the program's page (its numbers, the rules that pay and the offers they generate in each language,
  the install checklist, the portal preview) and switches on the friend's welcome page;
- a referral link then opens the welcome page in the friend's language, the friend leaves their email, the real
  worker decides and issues their sign-up coupon, and the page reveals it;
- the shop's code check answers the friend's reward as rules a checkout can apply, in the asked language.
"""

from __future__ import annotations

import html
import re

import pytest

from tests.system.stack import Browser, wait_for

pytestmark = pytest.mark.slow


def _text(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html.unescape(response.text)).split())


def test_program_page_welcome_page_and_code_check_through_the_real_processes(stack):
    shop = stack.createmerchant()
    api = stack.api(shop.live_key)
    owner = Browser(stack.base_url)
    owner.sign_in(shop.owner_email, shop.password)

    programs = owner.get("/admin/programs/program/")
    assert programs.status_code == 200
    program_id = re.search(r"/admin/programs/program/(\d+)/change/", programs.text).group(1)
    page_url = f"/admin/programs/program/{program_id}/change/"
    program_page = owner.get(page_url)
    assert program_page.status_code == 200
    text = _text(program_page)
    for panel in ("The last 30 days", "Reward rules: what pays", "The offer as customers read it", "Install:",
                  "Preview the portal"):  # fmt: skip
        assert panel in text, panel
    assert "Friend: 10% off the first order" in text  # the demo program's friend rule, linked
    assert f"/install/{program_id}/" in program_page.text

    saved = owner.submit(page_url, friend_welcome_page="on")
    assert saved.status_code == 302, _text(saved)[-2000:]

    anna = api.post("/api/v1/participants", json={"program": shop.program, "email": "anna@example.com",
                                                  "name": "Anna Nowak"})  # fmt: skip
    assert anna.status_code == 201, anna.text
    code = anna.json()["code"]

    friend = Browser(stack.base_url)
    friend.headers["Accept-Language"] = "pl"
    clicked = friend.get(f"/r/{code}", allow_redirects=False)
    assert clicked.status_code == 302
    assert clicked.headers["Location"].startswith(f"/p/{shop.slug}/{shop.program}/welcome/?ref={code}&rs_click=")
    welcome_path = friend.get(clicked.headers["Location"], allow_redirects=False).headers["Location"]
    assert welcome_path.startswith(f"/pl/p/{shop.slug}/{shop.program}/welcome/")
    welcome = friend.get(welcome_path)
    assert welcome.status_code == 200
    assert "Anna N. daje ci prezent" in _text(welcome)

    form = welcome.text.split('<section class="join"')[1]  # the page's own form (after the language switcher's)
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
    assert fields["ref"] == code
    signed_up = friend.post(welcome_path, data={**fields, "email": "jan.kowalski@example.com"}, allow_redirects=False)
    assert signed_up.status_code == 302, _text(signed_up)[-2000:]
    status_url = f"/pl/p/{shop.slug}/{shop.program}/welcome/gift.json"

    def revealed():
        answer = friend.get(status_url).json()
        return answer if answer["state"] == "ready" else None

    gift = wait_for(revealed, timeout=120, interval=1, what="the worker to issue the friend's welcome coupon")
    assert gift["coupon_code"].startswith("WELCOME")
    assert gift["coupon_code"] in friend.get(welcome_path).text

    check = api.get(f"/api/v1/codes/{code}", params={"language": "ro"})
    assert check.status_code == 200, check.text
    body = check.json()
    assert body["valid"] is True
    assert [(r["when"], r["kind"], r["value"], r["hold_days"]) for r in body["referee_rewards"]] == [
        ("signup", "percent_coupon", "10.00", 0)
    ]
    assert body["referee_offer"]  # the merchant's Romanian wording of the demo program
