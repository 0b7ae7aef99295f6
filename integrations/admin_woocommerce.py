"""The merchant admin's "Connect WooCommerce in one click" page (a part of ConnectionAdmin): the merchant names the
store, is sent to approve our access there (/wc-auth/v1/authorize), and comes back to the connections list; the
store posts the keys to our callback meanwhile (integrations/services/woocommerce.py)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _

from integrations.services.woocommerce import woocommerce_authorize_url
from referral_saas.errors import ValidationFailed


class WooCommerceConnectMixin:
    def get_urls(self):
        connect = path(
            "woocommerce/connect/",
            self.admin_site.admin_view(self.woocommerce_connect),
            name="integrations_connection_woocommerce_connect",
        )
        back = path(
            "woocommerce/return/",
            self.admin_site.admin_view(self.woocommerce_return),
            name="integrations_connection_woocommerce_return",
        )
        return [connect, back, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        url = reverse("admin:integrations_connection_woocommerce_connect")
        return super().changelist_view(request, {**(extra_context or {}), "woocommerce_connect_url": url})

    def woocommerce_connect(self, request):
        if not self._can_write(request):
            raise PermissionDenied
        site = (request.POST.get("site") or "").strip()
        if request.method == "POST" and site:
            try:
                back = settings.SITE_URL + reverse("admin:integrations_connection_woocommerce_return")
                url = woocommerce_authorize_url(
                    merchant=request.merchant, site=site, livemode=not request.POST.get("test"), return_url=back
                )
            except ValidationFailed as exc:
                messages.error(request, " ".join(str(m) for m in exc.fields.get("account", [exc.message])))
                return redirect(reverse("admin:integrations_connection_woocommerce_connect"))
            return HttpResponseRedirect(url)
        context = {**self.admin_site.each_context(request), "title": _("Connect WooCommerce"), "opts": self.opts}
        return TemplateResponse(request, "admin/integrations/connection/woocommerce_connect.html", context)

    def woocommerce_return(self, request):
        """Where the store sends the merchant back (?success=1 or 0): the keys came by the callback meanwhile."""
        if request.GET.get("success") == "1":
            messages.success(request, _("Your store approved the connection: we are creating the webhooks on it."))
        else:
            messages.error(request, _("The store did not approve the connection; nothing was connected."))
        return redirect(reverse("admin:integrations_connection_changelist"))
