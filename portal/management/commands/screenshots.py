"""manage.py screenshots --out DIR: PNGs of the main admin and portal pages at 1366x768 and 390x844, for review.

It starts nothing: it drives a browser (Playwright, from the test extras: `make install-test`; Debian's `chromium`
when installed, else Playwright's own) against a running server (`--base-url`, default SITE_URL, e.g. `make run`)
that uses this project's database. It signs in to the admin as the demo owner (`seed_demo` prints the login) and
shows that login's first shop; the portal's signed-in page is opened with a one-time link made here for the
program's first referrer (`--referrer` picks another), which signs them in as their emailed link would.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from analytics.management.commands.seed_demo import DEMO_EMAIL, DEMO_PASSWORD
from portal.services import portal_link_make
from programs.models import Participant, Program
from referral_saas.tenancy.models import User
from referral_saas.tenancy.selectors import memberships_for_user
from tracking.models import ReferralCode

SIZES = {"desktop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


def admin_pages(program: Program) -> list[tuple[str, str]]:
    """(file name, path) of the merchant admin's main pages for `program`."""
    return [
        ("admin-home", "/admin/"),
        ("admin-programs", "/admin/programs/program/"),
        ("admin-program", f"/admin/programs/program/{program.pk}/change/"),
        ("admin-program-dashboard", f"/admin/analytics/dailystats/program/{program.pk}/"),
        ("admin-reward-rules", "/admin/rewards/rewardrule/"),
        ("admin-reward-rule-add", "/admin/rewards/rewardrule/add/"),
        ("admin-review-queue", "/admin/fraud/fraudassessment/"),
        ("admin-install", f"/admin/integrations/connection/install/{program.pk}/"),
    ]


class Command(BaseCommand):
    help = "Save PNGs of the main admin and portal pages at desktop (1366x768) and phone (390x844) sizes."

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="Directory for the PNGs (created; files are replaced).")
        parser.add_argument("--base-url", default=None, help="The running server (default: SITE_URL).")
        parser.add_argument("--email", default=DEMO_EMAIL, help="Merchant staff login (default: the demo owner).")
        parser.add_argument("--password", default=DEMO_PASSWORD, help="Its password (default: the demo one).")
        parser.add_argument("--program", default=None, help="Program slug (default: the shop's first live one).")
        parser.add_argument("--referrer", default=None, help="Portal page of this referrer's email (default: first).")
        parser.add_argument("--chromium", default=None, help="Browser executable (default: `chromium` on PATH).")

    def handle(self, *args, **opts):
        try:
            from playwright.sync_api import Error as PlaywrightError
            from playwright.sync_api import sync_playwright
        except ImportError:
            raise CommandError("Playwright is missing: `make install-test` installs the test extras.") from None
        base = (opts["base_url"] or settings.SITE_URL).rstrip("/")
        out = Path(opts["out"])
        # Every database read happens here, before Playwright starts its event loop in this thread.
        program = self._program(opts["email"], opts["program"])
        portal_path = f"/p/{program.merchant.slug}/{program.slug}/"
        welcome_path = self._welcome_path(program)
        # A sign-in link works once: one per size.
        sign_in_paths = {size: self._sign_in_path(program, opts["referrer"]) for size in SIZES}

        saved: list[Path] = []
        problems: list[str] = []
        with sync_playwright() as playwright:
            executable = opts["chromium"] or shutil.which("chromium")
            try:
                browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            except PlaywrightError as exc:
                raise CommandError(f"Could not start {executable or 'the browser'}: {exc}") from exc
            try:
                for size, viewport in SIZES.items():
                    folder = out / size
                    folder.mkdir(parents=True, exist_ok=True)

                    def shoot(page, name: str, path: str | None, folder=folder, size=size) -> None:
                        if path is not None:
                            response = page.goto(base + path)
                            if response is None or response.status >= 400:
                                status = response.status if response else "no answer"
                                problems.append(f"{size} {name}: {path} answered {status}")
                        page.wait_for_load_state("load")
                        file = folder / f"{name}.png"
                        page.screenshot(path=str(file), full_page=True)
                        saved.append(file)

                    staff = browser.new_context(locale="en-US", viewport=viewport)
                    page = staff.new_page()
                    self._admin_sign_in(page, base, opts["email"], opts["password"])
                    for name, path in admin_pages(program):
                        shoot(page, name, path)
                    staff.close()

                    for language, locale in (("en", "en-US"), ("pl", "pl-PL")):
                        visitor = browser.new_context(locale=locale, viewport=viewport)
                        shoot(visitor.new_page(), f"portal-join-{language}", portal_path)
                        visitor.close()
                    if welcome_path is not None:  # what a friend sees first, when the program welcomes friends
                        friend = browser.new_context(locale="en-US", viewport=viewport)
                        shoot(friend.new_page(), "portal-welcome", welcome_path)
                        friend.close()

                    if sign_in_paths[size] is not None:
                        referrer = browser.new_context(locale="en-US", viewport=viewport)
                        page = referrer.new_page()
                        page.goto(base + sign_in_paths[size])
                        page.locator("main form button[type=submit]").first.click()  # "Open my referral page"
                        page.wait_for_load_state("load")
                        if page.get_by_test_id("referral-link").count() == 0:
                            problems.append(f"{size} portal-dashboard: the sign-in link did not open it")
                        shoot(page, "portal-dashboard", None)
                        referrer.close()
            finally:
                browser.close()

        for file in saved:
            self.stdout.write(str(file))
        if sign_in_paths["desktop"] is None:
            self.stdout.write("No referrer in this program yet: the portal's signed-in page was skipped.")
        if problems:
            raise CommandError("Some pages did not load (their PNGs show the error):\n" + "\n".join(problems))

    def _program(self, email: str, slug: str | None) -> Program:
        user = User.objects.filter(email__iexact=email).first()
        memberships = memberships_for_user(user=user) if user else []
        if not memberships:
            raise CommandError(f"No merchant staff login {email!r} in this database (see `manage.py seed_demo`).")
        merchant = memberships[0].merchant  # the shop the admin opens on for this login
        programs = Program.objects.for_merchant(merchant).order_by("pk")
        if slug:
            program = programs.filter(slug=slug).first()
        else:
            program = next((p for p in programs if p.is_live()), None) or programs.first()
        if program is None:
            raise CommandError(f"{merchant.name} has no program{f' {slug!r}' if slug else ''}.")
        return program

    @staticmethod
    def _welcome_path(program: Program) -> str | None:
        """The friend's welcome page for the program's first referrer's code (None: the program does not welcome
        friends, or nobody's code to show)."""
        if not program.friend_welcome_page:
            return None
        code = ReferralCode.objects.for_merchant(program.merchant).filter(program=program, livemode=True).first()
        return f"/p/{program.merchant.slug}/{program.slug}/welcome/?ref={code.code}" if code else None

    def _sign_in_path(self, program: Program, email: str | None) -> str | None:
        """The path of a one-time portal sign-in link for an existing referrer (None: nobody to show)."""
        referrers = Participant.objects.for_merchant(program.merchant).filter(
            codes__program=program, livemode=True, status=Participant.Status.ACTIVE, email__isnull=False
        )
        referrer = referrers.filter(email__iexact=email).first() if email else referrers.order_by("pk").first()
        if referrer is None:
            if email:
                raise CommandError(f"No referrer {email!r} in {program.name}.")
            return None
        link = portal_link_make(
            program=program, email=referrer.email, name=referrer.name or "", language=referrer.language or "en"
        )
        return urlsplit(link).path

    @staticmethod
    def _admin_sign_in(page, base: str, email: str, password: str) -> None:
        page.goto(f"{base}/accounts/login/?next=/admin/")
        page.locator("input[name=login]").fill(email)
        page.locator("input[name=password]").fill(password)
        page.locator("form button[type=submit]").last.click()
        page.wait_for_load_state("load")
        if not re.search(r"/admin/", urlsplit(page.url).path):
            raise CommandError(f"Could not sign in to the admin as {email!r} (check --email / --password).")
