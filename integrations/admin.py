"""Merchant admin: shop connections (connect, test, disconnect; the webhook URL to give the platform) and the events
they sent (status, error, raw body, replay)."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from integrations import services
from integrations.http import PlatformError
from integrations.models import Connection, InboundEvent
from integrations.providers import provider_for
from referral_saas.tenancy.admin_site import ReadOnlyTenantAdmin, TenantModelAdmin, merchant_admin, ops_admin


class ConnectionForm(forms.ModelForm):
    """Connecting by pasting what the platform shows: its webhook signing secret and an API token."""

    secret = forms.CharField(
        label=_("webhook signing secret"),
        max_length=500,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Shopify: the app's API secret key. WooCommerce: the secret you chose for the webhooks. Stripe: "
                    "the endpoint's signing secret (whsec_...)."),
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


@admin.register(Connection, site=merchant_admin)
class ConnectionAdmin(TenantModelAdmin):
    form = ConnectionForm
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
    ]
    actions = ["test_connection", "disconnect"]

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
        return format_html("<code data-testid='webhook-url'>{}</code>", obj.webhook_url)

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
        connection, _created = services.connection_create(
            merchant=request.merchant,
            provider=data["provider"],
            account=data["account"],
            secret=data["secret"],
            credentials=provider_for(data["provider"]).credentials_from(data.get("token", "").strip()),
            livemode=data["livemode"],
        )
        obj.pk, obj.merchant_id = connection.pk, connection.merchant_id
        messages.info(
            request,
            format_html("{} <code>{}</code>", _("Give the platform this webhook URL:"), connection.webhook_url),
        )

    @admin.action(description=_("Test the selected connections"), permissions=["change"])
    def test_connection(self, request, queryset):
        for connection in queryset:
            try:
                answer = services.connection_check(connection=connection)
            except PlatformError as exc:
                messages.error(request, f"{connection}: {exc}")
            except NotImplementedError:
                messages.warning(request, f"{connection}: {_('this platform cannot be tested yet')}")
            else:
                messages.success(request, f"{connection}: {answer}")

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


for model in (Connection, InboundEvent):
    ops_admin.register(
        model,
        list_display=["__str__", "merchant", "status"],
        list_filter=["merchant"],
        list_select_related=True,
        exclude=["credentials", "webhook_secret", "previous_webhook_secret", "body"],
    )
