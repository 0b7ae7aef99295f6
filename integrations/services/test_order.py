"""The install page's "Send a test order": the whole referral loop, in test mode, through the doors a shop uses.

A test-mode "Test referrer" joins the program (the participant API's service), their link is followed (the click
recorded by the same function as /r/<code>, so it travels through the Redis stream), and a new test customer's
order names that click id (the conversions API's service). From there the order is the worker's like any other:
fraud scoring, reward rules, hold, issuing, webhooks to test-mode endpoints. Every row is livemode=False, so nothing
reaches live KPIs, live webhook endpoints, a live shop platform or a real customer's inbox.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.http import HttpRequest
from django.utils.translation import gettext as _

from integrations.selectors import TEST_CUSTOMER_PREFIX, TEST_ORDER_PREFIX
from programs.models import Program
from referral_saas.errors import Conflict
from referral_saas.tenancy.models import Merchant
from tracking.clicks import click_record
from tracking.models import Conversion
from tracking.selectors import code_info
from tracking.services import conversion_record, test_referrer_join

TEST_ORDER_AMOUNT = Decimal("100")  # whole units: valid in every currency (JPY has no decimals)
TEST_USER_AGENT = "ReferralSaaS test order (install page)"


def _link_visit() -> HttpRequest:
    # The visit the click records: no IP and no device cookie (the admin's own would tie the test customer to
    # whoever pressed the button, a fraud signal), a user agent that says what it was.
    request = HttpRequest()
    request.method = "GET"
    request.META = {"HTTP_USER_AGENT": TEST_USER_AGENT}
    return request


def test_order_send(*, merchant: Merchant, program: Program) -> Conversion:
    """Run the referral loop once in test mode and return the test order (its order id names the run).

    Refused (409) while the program is not live: its links would not record a click and its orders would not be
    attributed, so the run would show nothing but that. Each run has a new customer (a repeat buyer is no referral).
    """
    if not program.is_live():
        raise Conflict(
            _("The program is not live (active and inside its dates): activate it before sending a test order."),
            code="program_not_live",
        )
    referrer = test_referrer_join(merchant=merchant, program=program)
    code = referrer.codes.get(program=program)
    info = code_info(code.code)
    if info is None or not info.usable:
        raise Conflict(_("The test referrer's code cannot be used (disabled or blocked)."), code="code_unusable")
    click = click_record(info=info, request=_link_visit(), is_bot=False, utm={"utm_source": "test-order"})
    if click is None:
        raise Conflict(_("The click could not be recorded: try again in a moment."), code="click_not_recorded")
    click.confirm()
    run = uuid.uuid4().hex[:12]
    conversion, _created = conversion_record(
        merchant=merchant,
        livemode=False,
        order_id=f"{TEST_ORDER_PREFIX}{run}",
        amount=TEST_ORDER_AMOUNT,
        currency=program.currency,
        customer_external_id=f"{TEST_CUSTOMER_PREFIX}{run}",
        click_id=click.click_id,
        user_agent=TEST_USER_AGENT,
    )
    return conversion
