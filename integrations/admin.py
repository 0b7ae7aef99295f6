"""Merchant admin: shop connections (connect, test, disconnect; the webhook URL to give the platform) and the events
they sent (status, error, raw body, replay)."""

from __future__ import annotations

import json
import secrets

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from integrations import services
from integrations.admin_woocommerce import WooCommerceConnectMixin
from integrations.http import PlatformError
from integrations.install import install_view, test_order_status_view, test_order_view
from integrations.models import Connection, InboundEvent, OutboundSync
from integrations.providers import provider_for, shopify
from referral_saas.crypto import same_secret
from referral_saas.tenancy.admin_site import ReadOnlyTenantAdmin, TenantModelAdmin, merchant_admin, ops_admin

OAUTH_SESSION_KEY = "integrations:shopify_oauth"


class ConnectionForm(forms.ModelForm):
    """Connecting by pasting what the platform shows: its webhook signing secret and an API token."""

    secret = forms.CharField(
        label=_("webhook signing secret"),
        max_length=500,
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Shopify: the app's API secret key. WooCommerce and Stripe: leave it empty when you give the "
                    "API token, we create the webhooks and their secret; else the secret of the webhooks you made "
                    "(Stripe: the endpoint's signing secret, whsec_...). Marketing tools: the API key (Klaviyo "
                    "private key, Mailchimp key ending in -usNN, HubSpot private app token, Salesforce access "
                    "token, GA4 Measurement Protocol API secret)."),
    )  # fmt: skip
    token = forms.CharField(
        label=_("API token"),
        max_length=500,
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Shopify: the Admin API access token (shpat_...). WooCommerce: consumer_key:consumer_secret. "
                    "Stripe: a restricted key (rk_...). Used to create coupons and to catch up on missed events."),
    )  # fmt: skip

    class Meta:
        model = Connection
        fields = ["provider", "account", "livemode"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "provider" in self.fields:  # Zapier subscribes itself through the hooks API: nothing to connect here
            self.fields["provider"].choices = [c for c in self.fields["provider"].choices if c[0] != "zapier"]

    def clean(self):
        data = super().clean()
        handler = provider_for(data.get("provider") or "")
        own = handler is not None and handler.makes_own_secret and (data.get("token") or "").strip()
        if not (data.get("secret") or "").strip() and not own:
            self.add_error("secret", _("The webhook signing secret is required (or, for WooCommerce and Stripe, "
                                       "an API token: then we create the webhooks)."))  # fmt: skip
        return data


@admin.register(Connection, site=merchant_admin)
class ConnectionAdmin(WooCommerceConnectMixin, TenantModelAdmin):
    form = ConnectionForm
    change_list_template = "admin/integrations/connection/change_list.html"
    list_display = ["__str__", "livemode", "status", "last_event_at", "short_error", "created_at"]
    list_filter = ["provider", "status", "livemode"]
    search_fields = ["account"]
    readonly_fields = [
        "provider",
        "account",
        "livemode",
        "status",
        "webhook_url",
        "secret_set",
        "last_event_at",
        "last_error",
        "last_error_at",
        "synced_until",
        "created_at",
        "disconnected_at",
        "events_link",
        "syncs_link",
    ]
    actions = ["test_connection", "validate_ga4", "disconnect"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["provider", "account", "livemode", "secret", "token"]
        return [*self.readonly_fields, "settings"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # disconnecting keeps the history; the rows stay

    @admin.display(description=_("last error"))
    def short_error(self, obj):
        return (obj.last_error or "")[:80]

    @admin.display(description=_("webhook URL"))
    def webhook_url(self, obj):
        if obj.is_marketing:
            return "—"  # nothing comes in from a marketing tool
        return format_html("<code data-testid='webhook-url'>{}</code>", obj.webhook_url)

    @admin.display(description=_("marketing syncs"))
    def syncs_link(self, obj):
        if not obj.is_marketing:
            return "—"
        url = reverse("admin:integrations_outboundsync_changelist") + "?" + urlencode({"connection__id__exact": obj.pk})
        return format_html('<a href="{}">{}</a>', url, _("See what was sent to this tool"))

    @admin.display(description=_("webhook secret"), boolean=True)
    def secret_set(self, obj):
        return bool(obj.webhook_secret)

    @admin.display(description=_("events"))
    def events_link(self, obj):
        url = reverse("admin:integrations_inboundevent_changelist") + "?" + urlencode({"connection__id__exact": obj.pk})
        return format_html('<a href="{}">{}</a>', url, _("See the events of this shop"))

    def save_model(self, request, obj, form, change):
        if change:  # only the settings are editable on a connected shop
            Connection.objects.for_merchant(request.merchant).filter(pk=obj.pk).update(settings=obj.settings or {})
            return
        data = form.cleaned_data
        connection, installed = services.connection_connect(
            merchant=request.merchant,
            provider=data["provider"],
            account=data["account"],
            secret=data["secret"],
            token=data.get("token", ""),
            livemode=data["livemode"],
        )
        obj.pk, obj.merchant_id = connection.pk, connection.merchant_id
        self._connected_message(request, connection, installed)

    def _connected_message(self, request, connection, installed: list[str]) -> None:
        if connection.is_marketing:
            messages.success(request, _("Connected: participants with marketing consent are synced from now on."))
        elif installed:
            messages.success(request, _("Connected; webhooks created on the platform: %s.") % ", ".join(installed))
        else:
            messages.info(
                request,
                format_html("{} <code>{}</code>", _("Give the platform this webhook URL:"), connection.webhook_url),
            )

    # --- Shopify OAuth: installing our standalone app ---------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "shopify/install/",
                self.admin_site.admin_view(self.shopify_install),
                name="integrations_connection_shopify_install",
            ),
            path(
                "shopify/callback/",
                self.admin_site.admin_view(self.shopify_callback),
                name="integrations_connection_shopify_callback",
            ),
            path(
                "install/<int:program_id>/",
                self.admin_site.admin_view(lambda request, program_id: install_view(self, request, program_id)),
                name="integrations_connection_install",
            ),
            path(
                "install/<int:program_id>/test-order/",
                self.admin_site.admin_view(lambda request, program_id: test_order_view(self, request, program_id)),
                name="integrations_connection_test_order",
            ),
            path(
                "install/<int:program_id>/test-order/<str:order_id>/",
                self.admin_site.admin_view(
                    lambda request, program_id, order_id: test_order_status_view(self, request, program_id, order_id)
                ),
                name="integrations_connection_test_order_status",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        install = reverse("admin:integrations_connection_shopify_install") if settings.SHOPIFY_CLIENT_ID else None
        return super().changelist_view(request, {**(extra_context or {}), "shopify_install_url": install})

    def shopify_install(self, request):
        """Where "Install" starts (our admin's button, or Shopify's app listing with ?shop=&hmac=&timestamp=):
        a signed request is checked, then the merchant is sent to approve the app in their shop."""
        if not self._can_write(request):
            raise PermissionDenied
        if not settings.SHOPIFY_CLIENT_ID:
            messages.error(request, _("The Shopify app is not configured here: connect with a custom app's token."))
            return redirect(reverse("admin:integrations_connection_add"))
        query = request.GET.dict()
        if "hmac" in query and not shopify.oauth_query_valid(query, settings.SHOPIFY_CLIENT_SECRET):
            return HttpResponseBadRequest(_("The request is not signed by Shopify."))
        shop = (request.POST.get("shop") or query.get("shop") or "").strip().lower()
        if not shop:
            context = {**self.admin_site.each_context(request), "title": _("Install the Shopify app"),
                       "opts": self.opts}  # fmt: skip
            return TemplateResponse(request, "admin/integrations/connection/shopify_install.html", context)
        if not shopify.SHOP_DOMAIN.match(shop):
            messages.error(request, _("Name the shop by its myshopify.com domain, e.g. my-shop.myshopify.com."))
            return redirect(reverse("admin:integrations_connection_shopify_install"))
        state = secrets.token_urlsafe(24)
        request.session[OAUTH_SESSION_KEY] = {"state": state, "shop": shop, "merchant_id": request.merchant.pk}
        callback = settings.SITE_URL + reverse("admin:integrations_connection_shopify_callback")
        return HttpResponseRedirect(shopify.authorize_url(shop=shop, state=state, redirect_uri=callback))

    def shopify_callback(self, request):
        """Shopify sends the merchant back with a code: the signature, the state and the shop are checked, the code
        is exchanged for the offline token, and the shop is connected (with our webhooks)."""
        if not self._can_write(request):
            raise PermissionDenied
        query = request.GET.dict()
        expected = request.session.pop(OAUTH_SESSION_KEY, None) or {}
        if not (
            shopify.oauth_query_valid(query, settings.SHOPIFY_CLIENT_SECRET)
            and expected.get("state")
            and same_secret(expected["state"], query.get("state", ""))
            and expected.get("shop") == query.get("shop")
            and shopify.SHOP_DOMAIN.match(query.get("shop", ""))
            and expected.get("merchant_id") == request.merchant.pk
        ):
            return HttpResponseBadRequest(_("This installation link is not valid any more: start again."))
        try:
            token = shopify.exchange_code(shop=query["shop"], code=query.get("code", ""))
        except PlatformError as exc:
            messages.error(request, f"Shopify: {exc}")
            return redirect(reverse("admin:integrations_connection_changelist"))
        connection, installed = services.connection_connect(
            merchant=request.merchant,
            provider="shopify",
            account=query["shop"],
            secret=settings.SHOPIFY_CLIENT_SECRET,
            token=token,
            base_url=settings.SHOPIFY_OAUTH_BASE_URL,  # unset in production: the shop itself
        )
        self._connected_message(request, connection, installed)
        return redirect(reverse("admin:integrations_connection_change", args=[connection.pk]))

    @admin.action(description=_("Test the selected connections"), permissions=["change"])
    def test_connection(self, request, queryset):
        for connection in queryset:
            try:
                answer = services.connection_check(connection=connection)
            except PlatformError as exc:
                messages.error(request, f"{connection}: {exc}")
            else:
                messages.success(request, f"{connection}: {answer}")

    @admin.action(description=_("Validate GA4 events (Measurement Protocol debug endpoint)"), permissions=["change"])
    def validate_ga4(self, request, queryset):
        for connection in queryset.filter(provider="ga4"):
            try:
                objections = services.ga4_validate(connection=connection)
            except PlatformError as exc:
                messages.error(request, f"{connection}: {exc}")
                continue
            if objections:
                messages.error(request, f"{connection}: {_('GA4 objects:')} {'; '.join(objections)}")
            else:
                messages.success(request, f"{connection}: {_('GA4 accepts our events.')}")

    @admin.action(description=_("Disconnect the selected shops"), permissions=["change"])
    def disconnect(self, request, queryset):
        for connection in queryset:
            services.connection_disconnect(connection=connection)
        messages.success(request, _("Disconnected: nothing more is synced; the event history stays."))


@admin.register(InboundEvent, site=merchant_admin)
class InboundEventAdmin(ReadOnlyTenantAdmin):
    list_display = ["received_at", "connection", "topic", "event_id", "status", "attempts", "outcome", "short_error"]
    list_filter = ["status", "connection", "topic", "source"]
    search_fields = ["event_id", "topic", "order_ref"]
    list_select_related = ["connection"]
    date_hierarchy = "received_at"
    fields = [
        "connection",
        "topic",
        "event_id",
        "order_ref",
        "source",
        "status",
        "outcome",
        "error",
        "attempts",
        "next_attempt_at",
        "received_at",
        "processed_at",
        "headers",
        "raw_body",
        "privacy_result",
    ]
    readonly_fields = fields
    actions = ["replay"]

    @admin.display(description=_("error"))
    def short_error(self, obj):
        return (obj.error or "")[:80]

    @admin.display(description=_("raw body"))
    def raw_body(self, obj):
        return format_html("<pre>{}</pre>", obj.text[:20000])

    @admin.display(description=_("result"))
    def privacy_result(self, obj):
        if obj.result is None:
            return "—"
        return format_html("<pre>{}</pre>", json.dumps(obj.result, indent=2, ensure_ascii=False))

    def has_replay_permission(self, request) -> bool:
        return self._can_write(request)

    @admin.action(description=_("Replay the selected events (process the stored body again)"), permissions=["replay"])
    def replay(self, request, queryset):
        count = 0
        for event in queryset:
            services.inbound_event_replay(event=event)
            count += 1
        messages.success(request, _("%(n)s events will be processed again now.") % {"n": count})


@admin.register(OutboundSync, site=merchant_admin)
class OutboundSyncAdmin(ReadOnlyTenantAdmin):
    list_display = ["created_at", "connection", "kind", "key", "participant_id", "status", "attempts", "short_error"]
    list_filter = ["status", "kind", "connection", "event_type"]
    search_fields = ["key", "request"]
    list_select_related = ["connection"]
    date_hierarchy = "created_at"
    fields = [
        "connection",
        "kind",
        "key",
        "event_type",
        "participant_id",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "request",
        "created_at",
        "sent_at",
        "data",
    ]
    readonly_fields = fields
    actions = ["replay"]

    @admin.display(description=_("error"))
    def short_error(self, obj):
        return (obj.last_error or "")[:80]

    @admin.display(description=_("data"))
    def data(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, ensure_ascii=False)[:20000])

    def has_replay_permission(self, request) -> bool:
        return self._can_write(request)

    @admin.action(description=_("Send the selected syncs again"), permissions=["replay"])
    def replay(self, request, queryset):
        count = sum(1 for item in queryset if services.outbound_sync_replay(item=item))
        messages.success(request, _("%(n)s syncs will be sent again now.") % {"n": count})


for model in (Connection, InboundEvent, OutboundSync):
    ops_admin.register(
        model,
        list_display=["__str__", "merchant", "status"],
        list_filter=["merchant"],
        list_select_related=True,
        exclude=["credentials", "webhook_secret", "previous_webhook_secret", "body", "payload"],
    )
