"""Coupon pools, their codes, and the CSV upload page (its pool looked up through the merchant's scope: a foreign
id is a 404)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from referral_saas.errors import ApplicationError
from referral_saas.tenancy.admin_site import (
    ReadOnlyTenantAdmin,
    TenantModelAdmin,
    form_add_domain_error,
    merchant_admin,
)
from rewards import services
from rewards.admin.common import ScopedUniqueNameForm
from rewards.models import Coupon, CouponPool, Reward

Status = Reward.Status
MAX_UPLOAD_BYTES = 8 * 1024 * 1024  # 100,000 codes of up to 64 characters, with room for a second column


class CouponPoolForm(ScopedUniqueNameForm):
    class Meta:
        model = CouponPool
        fields = ["program", "name", "description"]


class PoolUploadForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_("One code per line, or a column named 'code'. Codes already in the pool are skipped."),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The file is too large (at most 8 MB); split it into several uploads."))
        return upload


@admin.register(CouponPool, site=merchant_admin)
class CouponPoolAdmin(TenantModelAdmin):
    form = CouponPoolForm
    list_display = ["name", "program", "description", "free_codes", "assigned_codes", "upload_link"]
    list_filter = ["program"]
    search_fields = ["name", "description"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("program")
            .annotate(
                free_count=Count("coupons", filter=Q(coupons__reward__isnull=True)),
                assigned_count=Count("coupons", filter=Q(coupons__reward__isnull=False)),
            )
            .order_by("name", "pk")  # a GROUP BY query drops Meta.ordering
        )

    @admin.display(description=_("free codes"), ordering="free_count")
    def free_codes(self, obj):
        return obj.free_count

    @admin.display(description=_("assigned codes"), ordering="assigned_count")
    def assigned_codes(self, obj):
        return obj.assigned_count

    @admin.display(description=_("codes"))
    def upload_link(self, obj):
        return format_html('<a href="{}">{}</a>', self._upload_url(obj), gettext("Upload codes (CSV)"))

    def _upload_url(self, pool) -> str:
        return reverse(f"{self.admin_site.name}:rewards_couponpool_upload", args=[pool.pk])

    def get_urls(self):
        custom = [
            path(
                "<path:object_id>/upload/",
                self.admin_site.admin_view(self.upload_view),
                name="rewards_couponpool_upload",
            ),
        ]
        return custom + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_upload": self.has_change_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def upload_view(self, request, object_id):
        pool = self.get_object(request, object_id)
        if pool is None:
            raise Http404
        if not self.has_change_permission(request, pool):
            raise PermissionDenied
        form = PoolUploadForm(request.POST, request.FILES) if request.method == "POST" else PoolUploadForm()
        if form.is_bound and form.is_valid():
            try:
                added, skipped = services.pool_upload(pool=pool, data=form.cleaned_data["file"].read())
            except ApplicationError as exc:
                form_add_domain_error(form, exc, "file")
            else:
                self.message_user(
                    request,
                    gettext("Added %(added)d, skipped %(skipped)d duplicates.") % {"added": added, "skipped": skipped},
                )
                waiting = (
                    Reward.objects.for_merchant(request.merchant)
                    .filter(status=Status.APPROVED, flag=Reward.Flag.POOL_EMPTY)
                    .filter(Q(rule__pool=pool) | Q(catalog_item__pool=pool))
                    .count()
                )
                if waiting and added:
                    self.message_user(
                        request,
                        ngettext(
                            "%(n)d reward was waiting for a code from this pool; it gets one within a minute.",
                            "%(n)d rewards were waiting for a code from this pool; they get one within a minute.",
                            waiting,
                        )
                        % {"n": waiting},
                    )
                return redirect(reverse(f"{self.admin_site.name}:rewards_couponpool_change", args=[pool.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Upload codes to %(pool)s") % {"pool": pool},
            "opts": self.opts,
            "original": pool,
            "form": form,
            "free": Coupon.objects.for_merchant(request.merchant).filter(pool=pool, reward__isnull=True).count(),
        }
        return TemplateResponse(request, "admin/rewards/couponpool/upload.html", context)


class AssignedFilter(admin.EmptyFieldListFilter):
    """Free codes (no reward yet) or assigned ones."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = _("assigned")

    def choices(self, changelist):
        for lookup, title in ((None, _("All")), ("1", _("Free")), ("0", _("Assigned to a reward"))):
            yield {
                "selected": self.lookup_val == lookup,
                "query_string": changelist.get_query_string({self.lookup_kwarg: lookup}),
                "display": title,
            }


@admin.register(Coupon, site=merchant_admin)
class CouponAdmin(ReadOnlyTenantAdmin):
    list_display = ["code", "pool", "reward", "assigned_at", "created_at"]
    list_filter = ["pool", ("reward", AssignedFilter)]
    list_select_related = ["pool", "reward__participant"]
    search_fields = ["code"]
    fields = ["code", "pool", "reward", "assigned_at", "created_at"]
    readonly_fields = fields
    show_full_result_count = False  # pools hold up to 100,000 codes each
