"""Merchant admin: webhook endpoints (the secret shown once, events as checkboxes, enable/disable, rotate) and
deliveries with their attempts (read-only, resend)."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from referral_saas.errors import ApplicationError
from referral_saas.tenancy.admin_site import (
    ReadOnlyTenantAdmin,
    ReadOnlyTenantInline,
    TenantModelAdmin,
    merchant_admin,
    ops_admin,
)
from referral_saas.webhooks import services
from referral_saas.webhooks.models import (
    EVENT_CHOICES,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)


def _error_messages(exc: ApplicationError) -> list[str]:
    return [str(m) for errors in exc.fields.values() for m in errors] or [exc.message]


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=2000, assume_scheme="https")
    events = forms.MultipleChoiceField(
        label=capfirst(_("events")),
        choices=EVENT_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Leave all unticked to receive every event, including ones added later."),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "events", "livemode", "enabled"]

    def clean_url(self):
        try:
            return services.endpoint_url_check(url=self.cleaned_data["url"])
        except ApplicationError as exc:
            raise ValidationError(_error_messages(exc)) from exc


@admin.register(WebhookEndpoint, site=merchant_admin)
class WebhookEndpointAdmin(TenantModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "description", "livemode", "enabled", "disabled_reason", "event_list", "failing_since"]
    list_filter = ["enabled", "livemode"]
    search_fields = ["url", "description"]
    readonly_fields = ["secret_hint", "disabled_reason", "failing_since", "created_at", "deliveries_link"]
    actions = ["enable", "disable", "rotate_secret"]

    @admin.display(description=_("events"))
    def event_list(self, obj):
        return ", ".join(obj.events) if obj.events else _("all")

    @admin.display(description=_("signing secret"))
    def secret_hint(self, obj):
        return format_html("<code>{}</code>", obj.secret_hint) if obj.pk else "—"

    @admin.display(description=_("deliveries"))
    def deliveries_link(self, obj):
        if not obj.pk:
            return "—"
        url = reverse("admin:webhooks_webhookdelivery_changelist") + "?" + urlencode({"endpoint__id__exact": obj.pk})
        return format_html('<a href="{}">{}</a>', url, _("See the deliveries to this endpoint"))

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["url", "description", "events", "livemode", "enabled"]
        return ["url", "description", "events", "enabled", "livemode", *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else [*self.readonly_fields, "livemode"]

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            endpoint, secret = services.endpoint_create(
                merchant=request.merchant,
                livemode=data["livemode"],
                url=data["url"],
                description=data.get("description", ""),
                events=data.get("events"),
                enabled=data.get("enabled", True),
            )
            obj.pk, obj.merchant_id = endpoint.pk, endpoint.merchant_id
            self._show_secret(request, secret)
            return
        stored = WebhookEndpoint.objects.for_merchant(request.merchant).get(pk=obj.pk)
        services.endpoint_update(
            endpoint=stored, url=data["url"], description=data.get("description", ""), events=data.get("events")
        )
        if "enabled" in form.changed_data:
            if data["enabled"]:
                services.endpoint_enable(endpoint=stored)
            else:
                services.endpoint_disable(endpoint=stored)

    def _show_secret(self, request, secret: str) -> None:
        messages.warning(
            request,
            format_html(
                "{} <code class='secret' data-testid='webhook-secret'>{}</code> {}",
                _("Signing secret of this endpoint:"),
                secret,
                _("Copy it now: it will not be shown again."),
            ),
        )

    def delete_model(self, request, obj):
        services.endpoint_delete(endpoint=obj)

    def delete_queryset(self, request, queryset):
        for endpoint in queryset:
            services.endpoint_delete(endpoint=endpoint)

    @admin.action(description=_("Enable the selected endpoints"), permissions=["change"])
    def enable(self, request, queryset):
        for endpoint in queryset:
            services.endpoint_enable(endpoint=endpoint)
        messages.success(request, _("Endpoints enabled: new events are sent to them."))

    @admin.action(description=_("Disable the selected endpoints"), permissions=["change"])
    def disable(self, request, queryset):
        for endpoint in queryset:
            services.endpoint_disable(endpoint=endpoint)
        messages.success(request, _("Endpoints disabled: nothing more is sent to them."))

    @admin.action(description=_("Rotate the signing secret"), permissions=["change"])
    def rotate_secret(self, request, queryset):
        for endpoint in queryset:
            endpoint, secret = services.endpoint_rotate_secret(endpoint=endpoint)
            messages.info(request, endpoint.url)
            self._show_secret(request, secret)
        messages.success(
            request, _("For the next 24 hours requests carry signatures with both the new and the old secret.")
        )


class WebhookAttemptInline(ReadOnlyTenantInline):
    model = WebhookAttempt
    fields = ["created_at", "number", "succeeded", "status_code", "latency_ms", "error", "response_excerpt"]
    readonly_fields = fields
    ordering = ["-created_at"]
    verbose_name = _("attempt")
    verbose_name_plural = _("attempts (every request, newest first)")


@admin.register(WebhookDelivery, site=merchant_admin)
class WebhookDeliveryAdmin(ReadOnlyTenantAdmin):
    list_display = [
        "message_id",
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "last_attempt_at",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", "endpoint"]
    search_fields = ["message__msg_id", "message__type", "endpoint__url"]
    list_select_related = ["message", "endpoint"]
    date_hierarchy = "created_at"
    fields = [
        "message_id",
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "last_attempt_at",
        "next_attempt_at",
        "created_at",
        "body",
    ]
    readonly_fields = fields
    inlines = [WebhookAttemptInline]
    actions = ["resend"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("message", "endpoint")

    @admin.display(description=_("webhook-id"), ordering="message__msg_id")
    def message_id(self, obj):
        return format_html("<code>{}</code>", obj.message.msg_id)

    @admin.display(description=_("event"), ordering="message__type")
    def event_type(self, obj):
        return obj.message.type

    @admin.display(description=_("data"))
    def body(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.message.payload, indent=2, ensure_ascii=False))

    def has_resend_permission(self, request) -> bool:
        return self._can_write(request)

    @admin.action(description=_("Resend the selected deliveries (same webhook-id)"), permissions=["resend"])
    def resend(self, request, queryset):
        sent = 0
        for delivery in queryset:
            try:
                services.delivery_resend(delivery=delivery)
            except ApplicationError as exc:
                self.message_domain_error(request, exc)
            else:
                sent += 1
        if sent:
            messages.success(request, _("%(n)s deliveries will be sent again now.") % {"n": sent})


for model in (WebhookEndpoint, WebhookMessage, WebhookDelivery, WebhookAttempt):
    ops_admin.register(model, list_display=["__str__", "merchant"], list_filter=["merchant"], list_select_related=True)
