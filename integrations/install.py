"""The install page of a program (admin → Programs → Install): what to put in the shop, filled in with the
merchant's own program and key names, the shop platforms to connect first, and a checklist ticked by real events
(integrations.selectors.setup_checklist)."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from integrations.models import MARKETING_PROVIDERS, Connection
from integrations.selectors import setup_checklist, test_order_run
from integrations.services.test_order import test_order_send
from programs.models import Program
from programs.signals import Panel, PanelRow
from referral_saas.errors import ApplicationError
from referral_saas.tenancy.models import ApiKey

KEY_PLACEHOLDER = "rk_test_..."  # keys are stored hashed: the page names the key, the merchant pastes it


def _order(program: Program) -> dict:
    return {
        "order_id": "1001",
        "amount": "129.90",
        "currency": program.currency,
        "customer": {"external_id": "c-77", "email": "friend@example.com"},
        "click_id": "<referral_click_id>",
        "code": "<referral_code>",
        "device_id": "<referral_device_id>",
        "ip": "<buyer IP>",
    }


def code_samples(*, program: Program, key: str) -> list[tuple[str, str]]:
    """(language, code) for reporting an order from the shop's server, in curl, Python, PHP and Node."""
    url = f"{settings.SITE_URL}/api/v1/conversions"
    body = json.dumps(_order(program), indent=2)
    compact = json.dumps(_order(program))
    php_body = body.replace("{", "[").replace("}", "]").replace('":', '" =>')
    return [
        ("curl", f"curl -X POST {url} \\\n  -H 'Authorization: Bearer {key}' \\\n"
                 f"  -H 'Content-Type: application/json' -H 'Idempotency-Key: order-1001' \\\n  -d '{compact}'"),
        ("Python", f"import requests\n\nrequests.post(\n    \"{url}\",\n"
                   f"    headers={{\"Authorization\": \"Bearer {key}\", \"Idempotency-Key\": \"order-1001\"}},\n"
                   f"    json={body},\n    timeout=10,\n).raise_for_status()"),
        ("PHP", f"$ch = curl_init('{url}');\ncurl_setopt_array($ch, [\n  CURLOPT_POST => true,\n"
                f"  CURLOPT_HTTPHEADER => ['Authorization: Bearer {key}', 'Content-Type: application/json',\n"
                f"                         'Idempotency-Key: order-1001'],\n"
                f"  CURLOPT_POSTFIELDS => json_encode({php_body}),\n  CURLOPT_RETURNTRANSFER => true,\n]);\n"
                f"$answer = curl_exec($ch);"),
        ("Node", f"await fetch(\"{url}\", {{\n  method: \"POST\",\n  headers: {{\"Authorization\": \"Bearer {key}\", "
                 f"\"Content-Type\": \"application/json\",\n            \"Idempotency-Key\": \"order-1001\"}},\n"
                 f"  body: JSON.stringify({body}),\n}});"),
    ]  # fmt: skip


def _program(request, program_id: int) -> Program:
    return get_object_or_404(Program.objects.for_merchant(request.merchant), pk=program_id)


def _can_write(request) -> bool:
    membership = getattr(request, "membership", None)
    return membership is not None and membership.can_write


def install_view(model_admin, request, program_id: int):
    program = _program(request, program_id)
    merchant = request.merchant
    order_id = request.GET.get("test_order", "")[:128]
    run = test_order_run(merchant=merchant, program=program, order_id=order_id) if order_id else None
    keys = list(ApiKey.objects.for_merchant(merchant).filter(revoked_at__isnull=True).order_by("-mode", "-created_at"))
    test_key = next((k for k in keys if k.mode == ApiKey.Mode.TEST), None)
    key = f"{test_key.prefix}...{test_key.last4}" if test_key else KEY_PLACEHOLDER
    steps = setup_checklist(merchant=merchant, program=program)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Install %(program)s in your shop") % {"program": program.name},
        "opts": model_admin.opts,
        "program": program,
        "steps": steps,
        "done": sum(step.done for step in steps),
        "keys": keys,
        "snippet": f'<script src="{settings.SITE_URL}/static/referral.js" '
                   f'data-window-days="{program.attribution_window_days}" defer></script>',
        "samples": code_samples(program=program, key=key),
        "join_sample": json.dumps({"program": program.slug, "external_id": "c-42", "email": "anna@example.com"}),
        "connections": Connection.objects.for_merchant(merchant)
        .exclude(status=Connection.Status.DISCONNECTED)
        .exclude(provider__in=MARKETING_PROVIDERS),
        "connect_url": reverse("admin:integrations_connection_add"),
        "woocommerce_url": _reverse_or_none("admin:integrations_connection_woocommerce_connect"),
        "shopify_url": reverse("admin:integrations_connection_shopify_install") if settings.SHOPIFY_CLIENT_ID else None,
        "api_key_url": reverse("admin:tenancy_apikey_add"),
        "webhook_url": _reverse_or_none("admin:webhooks_webhookendpoint_add"),
        "portal_url": f"/p/{merchant.slug}/{program.slug}/",
        "can_write": _can_write(request),
        "run": run,
        "test_order_url": reverse("admin:integrations_connection_test_order", args=[program.pk]),
        "run_status_url": reverse("admin:integrations_connection_test_order_status", args=[program.pk, run.order_id])
        if run else None,
    }  # fmt: skip
    return TemplateResponse(request, "admin/integrations/install.html", context)


def test_order_view(model_admin, request, program_id: int):
    """POST "Send a test order": runs the loop in test mode, then shows the install page with the run."""
    program = _program(request, program_id)
    if request.method != "POST":
        return HttpResponseRedirect(reverse("admin:integrations_connection_install", args=[program.pk]))
    if not _can_write(request):
        raise PermissionDenied
    page = reverse("admin:integrations_connection_install", args=[program.pk])
    try:
        conversion = test_order_send(merchant=request.merchant, program=program)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return HttpResponseRedirect(page)
    messages.success(request, _("Test order %(order)s sent in test mode.") % {"order": conversion.order_id})
    return HttpResponseRedirect(f"{page}?test_order={conversion.order_id}#test-order")


def test_order_status_view(model_admin, request, program_id: int, order_id: str):
    """The run of a test order as JSON, for the install page to refresh its stages."""
    run = test_order_run(merchant=request.merchant, program=_program(request, program_id), order_id=order_id)
    if run is None:
        raise Http404
    response = JsonResponse(run.as_json())
    response["Cache-Control"] = "no-store"
    return response


def _reverse_or_none(name: str) -> str | None:
    from django.urls import NoReverseMatch

    try:
        return reverse(name)
    except NoReverseMatch:
        return None


def program_overview(sender, *, program, request, **kwargs) -> list[Panel]:
    """The program page's install panel (connected in IntegrationsConfig.ready): the setup checklist, ticked by real
    events, and the way to the install page."""
    steps = setup_checklist(merchant=program.merchant, program=program)
    rows = [PanelRow(step.label, _("done") if step.done else _("not yet")) for step in steps]
    done = sum(step.done for step in steps)
    title = _("Install: %(done)d of %(total)d steps done") % {"done": done, "total": len(steps)}
    url = reverse("admin:integrations_connection_install", args=[program.pk])
    return [Panel(20, title, rows, [(_("Open the install page (snippet, code samples, test order)"), url)])]
