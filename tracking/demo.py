"""A tiny demo storefront (DEMO_SHOP, on by default with DEBUG): the landing page of the demo program.

It carries the JS snippet like a real shop page, and its checkout reports the order from the server side, the
way a shop's backend calls POST /api/v1/conversions — so `make run` shows the whole referral loop on one machine.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from programs.models import Program
from referral_saas.errors import ApplicationError
from referral_saas.money import MAX_AMOUNT, quantize
from referral_saas.tenancy.models import Merchant
from tracking.clicks import client_ip
from tracking.services import conversion_record

DEMO_MERCHANT_SLUG = "demo-shop"


@require_http_methods(["GET", "POST"])
def storefront(request):
    if not settings.DEMO_SHOP:
        raise Http404
    merchant = Merchant.objects.filter(slug=DEMO_MERCHANT_SLUG).first()
    if merchant is None:  # `manage.py seed_demo` (which `make run` runs) has not made the demo shop here
        raise Http404
    program = Program.objects.for_merchant(merchant).filter(slug="friends").first()
    context = {"merchant": merchant, "program": program}
    if request.method == "POST":
        try:
            currency = program.currency if program else merchant.default_currency
            amount = quantize(Decimal(request.POST.get("amount", "0")), currency)  # in the currency's decimals
            if not (0 < amount <= MAX_AMOUNT) or not request.POST.get("order_id"):
                raise InvalidOperation
            conversion, _created = conversion_record(
                merchant=merchant,
                livemode=True,
                order_id=request.POST.get("order_id", ""),
                amount=amount,
                currency=currency,
                customer_email=request.POST.get("email", ""),
                code=request.POST.get("referral_code") or None,
                click_id=request.POST.get("referral_click_id") or None,
                ip=client_ip(request),
                user_agent=request.headers.get("User-Agent", ""),
                device_id=request.POST.get("referral_device_id", ""),
            )
            context["conversion"] = conversion
        except (ApplicationError, InvalidOperation) as exc:
            context["error"] = getattr(exc, "message", "Enter an order number and an amount like 129.90.")
    return render(request, "demo_shop.html", context)
