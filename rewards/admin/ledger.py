"""The ledger (points, store credit, cash due), the cash-due page and its CSV, and recording a payout."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from programs.models import Participant, Program
from referral_saas.api import is_id
from referral_saas.csv_export import CsvExportMixin, stream_csv
from referral_saas.errors import ApplicationError
from referral_saas.money import currency_decimals, format_amount, format_money, is_currency
from referral_saas.money import quantize as quantize_money
from referral_saas.tenancy.admin_site import ReadOnlyTenantAdmin, form_add_domain_error, merchant_admin
from rewards import selectors, services
from rewards.models import LedgerEntry


class PayoutForm(forms.Form):
    program = forms.ModelChoiceField(
        label=capfirst(_("program")), queryset=Program.all_merchants.none(), empty_label=None
    )
    amount = forms.DecimalField(label=capfirst(_("amount paid")), max_digits=15, decimal_places=3)
    note = forms.CharField(
        label=capfirst(_("note")), max_length=300, required=False, help_text=_("e.g. the bank transfer's reference")
    )

    def __init__(self, *args, programs, due: Decimal, currency: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.due, self.currency = due, currency
        self.fields["program"].queryset = programs
        shown = format_amount(due, currency)  # in the currency's decimals: "1,299" JPY, "12.50" PLN
        self.fields["amount"].help_text = gettext("At most %(due)s %(currency)s.") % {
            "due": shown,
            "currency": currency,
        }
        self.fields["amount"].widget.attrs["step"] = str(Decimal(1).scaleb(-currency_decimals(currency)))
        if "amount" in self.initial:
            self.initial["amount"] = quantize_money(self.initial["amount"], currency)


@admin.register(LedgerEntry, site=merchant_admin)
class LedgerEntryAdmin(CsvExportMixin, ReadOnlyTenantAdmin):
    list_display = ["created_at", "participant", "account", "kind", "amount_label", "program", "reward", "note"]
    list_filter = ["account", "kind", "program", "livemode"]
    list_select_related = ["participant", "program", "reward__participant"]
    search_fields = ["participant__email", "participant__external_id", "note"]
    date_hierarchy = "created_at"
    fields = [
        "participant", "program", "account", "kind", "amount_label", "reward", "refund", "note", "created_by",
        "created_at", "livemode",
    ]  # fmt: skip
    readonly_fields = fields
    change_list_template = "admin/rewards/ledgerentry/change_list.html"  # "Cash due" next to "Export CSV"
    csv_columns = [
        ("id", "pk"), ("created_at", "created_at"), ("program", "program.slug"), ("participant_id", "participant_id"),
        ("participant_external_id", "participant.external_id"), ("participant_email", "participant.email"),
        ("account", "account"), ("kind", "kind"), ("amount", "amount"), ("currency", "currency"),
        ("reward_id", "reward_id"), ("note", "note"),
    ]  # fmt: skip

    @admin.display(description=_("amount"), ordering="amount")
    def amount_label(self, obj):
        if obj.account == LedgerEntry.Account.POINTS:
            return f"{int(obj.amount):+d} pts"
        return f"{'+' if obj.amount > 0 else ''}{format_money(obj.amount, obj.currency)}"

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "cash_due_url": reverse(f"{self.admin_site.name}:rewards_cash_due")}
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        custom = [
            path("cash-due/", self.admin_site.admin_view(self.cash_due_view), name="rewards_cash_due"),
            path(
                "cash-due/<int:participant_id>/payout/",
                self.admin_site.admin_view(self.payout_view),
                name="rewards_cash_payout",
            ),
        ]
        return custom + super().get_urls()

    def _program_filter(self, request):
        wanted = request.GET.get("program", "")
        if not wanted:
            return None
        program = Program.objects.for_merchant(request.merchant).filter(pk=wanted).first() if is_id(wanted) else None
        if program is None:
            raise Http404
        return program

    def cash_due_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        program = self._program_filter(request)
        due = selectors.cash_due(merchant=request.merchant, program=program)
        if request.GET.get("format") == "csv":
            header = ["participant_id", "external_id", "email", "name", "currency", "amount_due"]
            rows = (
                [r[key] for key in ("participant_id", "participant__external_id", "participant__email",
                                    "participant__name", "currency", "due")]
                for r in due.iterator(2000)
            )  # fmt: skip
            return stream_csv(rows, header=header, filename=f"cash-due-{timezone.localdate().isoformat()}.csv")
        rows = list(due[:1000])
        totals: dict[str, Decimal] = {}
        for row in rows:
            totals[row["currency"]] = totals.get(row["currency"], Decimal(0)) + row["due"]
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Cash due"),
            "opts": self.opts,
            "rows": rows,
            "truncated": len(rows) == 1000,
            "totals": sorted(totals.items()),
            "programs": Program.objects.for_merchant(request.merchant).order_by("name"),
            "program": program,
            "can_pay": self._can_write(request),
            "csv_query": urlencode({"program": program.pk, "format": "csv"} if program else {"format": "csv"}),
        }
        return TemplateResponse(request, "admin/rewards/ledgerentry/cash_due.html", context)

    def payout_view(self, request, participant_id: int):
        participant = Participant.objects.for_merchant(request.merchant).filter(pk=participant_id).first()
        if participant is None:
            raise Http404
        if not self._can_write(request):
            raise PermissionDenied
        currency = request.GET.get("currency", "")
        if not is_currency(currency):
            raise Http404  # the cash-due page links here with the currency owed; anything else is a bad address
        back = reverse(f"{self.admin_site.name}:rewards_cash_due")
        programs = Program.objects.for_merchant(request.merchant).filter(
            currency=currency,
            pk__in=LedgerEntry.objects.for_merchant(request.merchant)
            .filter(participant=participant, account=LedgerEntry.Account.CASH, livemode=True)
            .values("program_id"),
        )
        # What is due, shown and offered; the payout service checks the amount again against it, under a lock.
        due = selectors.cash_due_to(participant=participant, currency=currency)
        if due <= 0:
            self.message_user(
                request,
                gettext("Nothing is due to %(who)s in %(currency)s.") % {"who": participant, "currency": currency},
                level=messages.WARNING,
            )
            return redirect(back)
        form = PayoutForm(
            request.POST if request.method == "POST" else None,
            programs=programs,
            due=due,
            currency=currency,
            initial={"amount": due, "program": programs.order_by("pk").first()},
        )
        if request.method == "POST" and form.is_valid():
            try:
                services.cash_payout_record(
                    participant=participant,
                    program=form.cleaned_data["program"],
                    amount=form.cleaned_data["amount"],
                    user=request.user,
                    note=form.cleaned_data["note"],
                )
            except ApplicationError as exc:
                form_add_domain_error(form, exc, "amount")
            else:
                self.message_user(
                    request,
                    gettext("Recorded a payout of %(amount)s %(currency)s to %(who)s.")
                    % {
                        "amount": format_amount(form.cleaned_data["amount"], currency),
                        "currency": currency,
                        "who": participant,
                    },
                )
                return redirect(back)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Record a payout to %(who)s") % {"who": participant},
            "opts": self.opts,
            "participant": participant,
            "due": due,
            "currency": currency,
            "form": form,
            "back": back,
        }
        return TemplateResponse(request, "admin/rewards/ledgerentry/payout.html", context)
