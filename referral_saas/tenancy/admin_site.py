"""Two admin sites: `/admin/` for a merchant's staff (every row scoped to their merchant) and `/ops/` for operators.

A merchant admin page shows only the current merchant's rows, and so do its foreign-key dropdowns, autocomplete,
list filters, search, history and "add another" pop-ups. A foreign id is a 404, not a redirect that confirms it
exists. Owners and admins can change things; analysts can only look.
"""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import RelatedOnlyFieldListFilter, helpers
from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.exceptions import EmptyResultSet, FieldDoesNotExist, ValidationError
from django.db import DataError, connections, models, router, transaction
from django.db.models.constants import LOOKUP_SEP
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.text import capfirst, format_lazy
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from referral_saas.errors import ApplicationError
from referral_saas.tenancy.models import Membership, TenantModel, User
from referral_saas.tenancy.selectors import SESSION_MERCHANT_KEY, memberships_for_user


def _next_url(request, default: str) -> str:
    target = request.GET.get("next") or default
    return target if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}) else default


def _login_redirect(request, default: str):
    """Anonymous visitors sign in through allauth (with MFA), then come back to where they were going."""
    if request.user.is_authenticated:
        return None
    return HttpResponseRedirect(f"{reverse('account_login')}?{urlencode({'next': _next_url(request, default)})}")


# Lookups no list of ours needs, refused on every admin list like any other disallowed lookup (a 400): a regular
# expression from the query string runs inside PostgreSQL, where a bad one is an error and a nasty one (ReDoS) keeps
# a backend busy.
REFUSED_LOOKUPS = frozenset({"regex", "iregex"})

# What a filter value the database cannot take raises: psycopg2 refuses a NUL in a string (ValueError), PostgreSQL
# a value out of its range or a malformed array (DataError); Python-side, a bad date part (ValueError,
# OverflowError), a range with one end (IndexError), a number too large for a Decimal context (ArithmeticError).
BAD_VALUE_ERRORS = (ValueError, ArithmeticError, IndexError, ValidationError, DataError)


class CheckedChangeList(ChangeList):
    """Django's ChangeList, with query-string values it cannot use answered as an invalid filter (a redirect to
    the list with ?e=1) instead of a 500, and lookups no page needs (regular expressions) refused.

    Django checks a filter value's type when it builds the query, but many bad values only fail later: a date part
    out of range when the SQL is compiled (`created_at__year=99999`, the date drill-down's "next year" of 9999), a
    NUL in a string, a number PostgreSQL cannot hold or a malformed array when the query runs, in the count.
    All become IncorrectLookupParameters, which Django's changelist view (the page, the actions posted to it) and
    the CSV export answer with the list and its "invalid filter" note. The count, the first query that runs the
    filters, runs in an atomic block (a savepoint inside a transaction), so that a database error leaves the
    request's connection usable; it costs no extra query.
    """

    def get_filters(self, request):
        for key, values in self.get_filters_params().items():
            if REFUSED_LOOKUPS.intersection(key.split(LOOKUP_SEP)):
                raise DisallowedModelAdminLookup(f"Filtering by {key} not allowed")
            # No text column holds a NUL (PostgreSQL cannot store one), so no filter value with one matches.
            if "\x00" in key or any("\x00" in value for value in values):
                raise IncorrectLookupParameters(f"NUL character in the filter {key!r}")
        try:
            return super().get_filters(request)
        except (ValueError, OverflowError) as exc:
            raise IncorrectLookupParameters(exc) from exc

    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        try:
            # Compiling is what the count and the page would do next; doing it here turns a value the SQL cannot
            # hold into an invalid filter while the request can still be answered.
            queryset.query.get_compiler(queryset.db).as_sql()
        except EmptyResultSet:  # e.g. `pk__in=` with no value: the list is empty, and that is fine
            pass
        except BAD_VALUE_ERRORS as exc:
            raise IncorrectLookupParameters(exc) from exc
        return queryset

    def get_results(self, request):
        try:
            with transaction.atomic(using=self.queryset.db):
                super().get_results(request)
        except BAD_VALUE_ERRORS as exc:
            raise IncorrectLookupParameters(exc) from exc


def _is_pk_value(model, value: str) -> bool:
    """Whether `value` (a row picked on a list) can be the model's primary key: a number for an integer key, within
    the column's range; a NUL is never one."""
    field = model._meta.pk
    if "\x00" in value:
        return False
    try:
        key = field.to_python(value)
    except ValidationError:
        return False
    if isinstance(field, models.IntegerField):
        ops = connections[router.db_for_read(model)].ops
        low, high = ops.integer_field_range(field.get_internal_type())
        return (low is None or key >= low) and (high is None or key <= high)
    return True


def form_add_domain_error(form, error: ApplicationError, field: str) -> None:
    """A service's refusal shown on a form: its messages for `field` (else its message), next to that field."""
    for message in error.fields.get(field) or [error.message]:
        form.add_error(field, str(message))


def form_add_field_errors(form, error: ApplicationError) -> None:
    """A service's refusal shown on a form: each message next to the field it names, above the form when the form
    has no such field, and the error's own message above the form when it names no field at all."""
    for field, messages_ in error.fields.items():
        for message in messages_:
            form.add_error(field if field in form.fields else None, str(message))
    if not error.fields:
        form.add_error(None, error.message)


class _SaveErrorForm:
    """Mixed into an admin form to show it again after its save was refused: the service's error next to the
    fields it names, else above the form."""

    save_error: ApplicationError

    def _post_clean(self):
        super()._post_clean()
        form_add_field_errors(self, self.save_error)


class CheckedAdminMixin:
    """For every ModelAdmin of both sites (the merchant's and ops), whatever it overrides:

    - bad filter values are an invalid filter, and regular-expression lookups are refused (CheckedChangeList); a
      search (or autocomplete) term with a NUL finds nothing;
    - an action posted with a selection that is not a list of row ids is refused with a message;
    - a domain rule that says no (an ApplicationError from a service) is shown, never a 500: on the form when saving
      an object (the save is rolled back and the form shown again, as typed), as a message when deleting one or
      running an action.
    """

    def get_changelist(self, request, **kwargs):
        return CheckedChangeList

    def get_search_results(self, request, queryset, search_term):
        # No stored text holds a NUL (PostgreSQL cannot store one), so nothing matches; psycopg2 would refuse the
        # query (a 500). The list's own search box already refuses it; this is for autocomplete (?term=).
        if "\x00" in search_term:
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)

    def message_domain_error(self, request, error: ApplicationError) -> None:
        self.message_user(request, error.message, level=messages.ERROR)

    def response_action(self, request, queryset):
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if not all(_is_pk_value(self.model, value) for value in selected):
            self.message_user(
                request, _("The selection is not a list of rows of this page; nothing was done."), messages.ERROR
            )
            return None  # Django redirects back to the list, as for an empty selection
        try:
            return super().response_action(request, queryset)
        except ApplicationError as exc:
            # Actions that go row by row report each row's refusal themselves; this is for one that stops.
            self.message_domain_error(request, exc)
            return None

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as exc:
            if request.method != "POST" or getattr(request, "_admin_save_error", None) is not None:
                raise
            # The save ran in changeform_view's transaction, which the error rolled back: nothing was written.
            # Showing the form again, bound to what was typed, with the error on it, is a second pass whose form
            # does not validate (get_form below).
            request._admin_save_error = exc
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        error = getattr(request, "_admin_save_error", None)
        if error is None:
            return form
        return type(form)(form.__name__, (_SaveErrorForm, form), {"save_error": error, "__module__": form.__module__})

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ApplicationError as exc:  # the delete ran in delete_view's transaction: rolled back
            self.message_domain_error(request, exc)
            return HttpResponseRedirect(request.get_full_path())


class CheckedAdminSite(admin.AdminSite):
    """Every ModelAdmin registered on this site checks its filter values and action selections and shows domain
    errors (CheckedAdminMixin), including a bare `site.register(Model)` and admin classes written without the
    mixin: a new page cannot forget it."""

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, CheckedAdminMixin):
            admin_class = type(
                admin_class.__name__, (CheckedAdminMixin, admin_class), {"__module__": admin_class.__module__}
            )
        super().register(model_or_iterable, admin_class, **options)


class MerchantAdminSite(CheckedAdminSite):
    site_header = _("Referral SaaS")
    site_title = _("Referral SaaS admin")
    index_title = _("Dashboard")
    enable_nav_sidebar = True
    # The home page's numbers come from an app above the core (analytics), which plugs them in at start-up
    # (set_home_page, from its AppConfig.ready). Without one, the home page is Django's list of models.
    home_context: Callable[[HttpRequest], dict] | None = None

    def set_home_page(self, *, template: str, context: Callable[[HttpRequest], dict]) -> None:
        """The home page's template and what fills it: `context(request)` returns the template's extra context."""
        self.index_template = template
        self.home_context = context

    def has_permission(self, request) -> bool:
        return bool(request.user.is_active and getattr(request, "membership", None) is not None)

    def login(self, request, extra_context=None):
        response = _login_redirect(request, reverse("admin:index"))
        if response is not None:
            return response
        if self.has_permission(request):
            return redirect(_next_url(request, reverse("admin:index")))
        # Signed in but not on any team (removed, or never created a shop): say so and offer a new shop.
        return render(request, "tenancy/no_membership.html", status=403)

    def logout(self, request, extra_context=None):
        return redirect("account_logout")

    def each_context(self, request):
        context = super().each_context(request)
        context.update(
            is_merchant_admin=True,
            current_merchant=getattr(request, "merchant", None),
            current_membership=getattr(request, "membership", None),
            memberships=getattr(request, "memberships", []),
        )
        return context

    def get_urls(self):
        urls = [
            path("switch-merchant/", self.admin_view(self.switch_merchant), name="switch_merchant"),
        ]
        # The contenttypes "view on site" shortcut (r/<ct>/<id>/) looks objects up unscoped: not on this site.
        return urls + [u for u in super().get_urls() if getattr(u, "name", None) != "view_on_site"]

    @staticmethod
    @require_POST
    def switch_merchant(request):
        wanted = request.POST.get("merchant_id", "")
        ids = {m.merchant_id for m in memberships_for_user(user=request.user)}
        if not wanted.isdigit() or int(wanted) not in ids:
            raise Http404
        request.session[SESSION_MERCHANT_KEY] = int(wanted)
        next_url = request.POST.get("next") or reverse("admin:index")
        if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
            next_url = reverse("admin:index")
        return redirect(next_url)

    def index(self, request, extra_context=None):
        if self.home_context is not None:
            extra_context = {**(extra_context or {}), **self.home_context(request)}
        return super().index(request, extra_context)


class OpsAdminSite(CheckedAdminSite):
    """Platform operators (superusers): every merchant, for support."""

    site_header = _("Referral SaaS operations")
    site_title = _("Referral SaaS ops")
    index_title = _("All merchants")

    def has_permission(self, request) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def login(self, request, extra_context=None):
        response = _login_redirect(request, reverse("ops:index"))
        if response is not None:
            return response
        if self.has_permission(request):
            return redirect(_next_url(request, reverse("ops:index")))
        return render(request, "errors/error.html", {"status": 403, "title": _("Operators only")}, status=403)

    def logout(self, request, extra_context=None):
        return redirect("account_logout")


merchant_admin = MerchantAdminSite(name="admin")
ops_admin = OpsAdminSite(name="ops")


def _tenant_key_chain(model, lookup: str) -> bool:
    """Whether `lookup` only compares the id of a row reached through foreign keys between tenant tables, like
    referral__variant__id__exact (the orders of a variant). Django refuses lookups through two relations unless a
    list filter names them, so that a query string cannot probe other fields of related rows; an id of the
    merchant's own rows reveals nothing the scoped list does not show, so these are allowed on every list."""
    parts = lookup.split(LOOKUP_SEP)
    if parts[-1] == "exact":
        parts = parts[:-1]
    if parts and parts[-1] in ("id", "pk"):
        parts = parts[:-1]
    if len(parts) < 2:
        return False
    current = model
    for part in parts:
        try:
            field = current._meta.get_field(part)
        except FieldDoesNotExist:
            return False
        if not (field.many_to_one and field.concrete and issubclass(field.related_model, TenantModel)):
            return False
        current = field.related_model
    return True


class TenantModelAdmin(CheckedAdminMixin, admin.ModelAdmin):
    """Base for every merchant-admin page of a tenant model."""

    def get_queryset(self, request):
        return super().get_queryset(request).for_merchant(request.merchant)

    # --- related choices ---------------------------------------------------------------------------------------

    def _scoped_related(self, request, related_model):
        if issubclass(related_model, TenantModel):
            return related_model.objects.for_merchant(request.merchant)
        if related_model is User:
            return User.objects.filter(memberships__merchant=request.merchant)
        return None

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        queryset = self._scoped_related(request, db_field.related_model)
        if queryset is not None:
            kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        queryset = self._scoped_related(request, db_field.related_model)
        if queryset is not None:
            kwargs["queryset"] = queryset
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        """The admin's date + time pair says "Date:" and "Time:" in plain text, not as labels: each input names
        itself (the field and its half) for screen readers (axe: form elements must have labels)."""
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        widget = getattr(field, "widget", None)
        if isinstance(widget, AdminSplitDateTime):
            name = capfirst(db_field.verbose_name)
            for half, label in zip(widget.widgets, (_("Date"), _("Time")), strict=True):
                half.attrs.setdefault("aria-label", format_lazy("{}: {}", name, label))
        return field

    # --- lookups in the query string ----------------------------------------------------------------------------

    # Lookups through relations that links may use without a filter in the sidebar (the dashboards link to lists
    # filtered like their numbers), as field paths: "conversion__occurred_at" allows its __gte, __lt, ...
    extra_lookups: tuple[str, ...] = ()

    def lookup_allowed(self, lookup, value, request=None):
        if super().lookup_allowed(lookup, value, request):
            return True
        if any(lookup == path or lookup.rsplit(LOOKUP_SEP, 1)[0] == path for path in self.extra_lookups):
            return True
        return _tenant_key_chain(self.model, lookup)

    def get_list_filter(self, request):
        # A plain related-field filter lists every row of the related table; "related only" lists the values
        # present in this (scoped) changelist.
        scoped = []
        for item in super().get_list_filter(request):
            if isinstance(item, str) and "__" not in item:
                field = self.model._meta.get_field(item)
                if field.is_relation:
                    item = (item, RelatedOnlyFieldListFilter)
            scoped.append(item)
        return scoped

    # --- writes ------------------------------------------------------------------------------------------------

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        # The merchant whose rules the form checks (unique names, its currency, its programs): the request's.
        form.merchant = request.merchant
        return form

    def save_model(self, request, obj, form, change):
        if not change:
            obj.merchant = request.merchant
        elif obj.merchant_id != request.merchant.pk:  # pragma: no cover - get_object already scoped it
            raise Http404
        super().save_model(request, obj, form, change)

    # --- permissions by role -----------------------------------------------------------------------------------

    def has_module_permission(self, request) -> bool:
        return getattr(request, "membership", None) is not None

    def has_view_permission(self, request, obj=None) -> bool:
        return getattr(request, "membership", None) is not None

    def _can_write(self, request) -> bool:
        membership: Membership | None = getattr(request, "membership", None)
        return membership is not None and membership.can_write

    def has_add_permission(self, request) -> bool:
        return self._can_write(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._can_write(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._can_write(request)

    # --- a foreign or missing id is a 404 ----------------------------------------------------------------------

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        raise Http404(f"No {opts.verbose_name} with id {object_id!r}.")


class TenantModelForm(forms.ModelForm):
    """A merchant admin form. The merchant is set by the admin (TenantModelAdmin.get_form), not by the form, so
    Django cannot check the model's `UniqueConstraint(merchant, ...)`s: this does, for each one whose fields the form
    holds, so that a taken value is an error on the constraint's last field, never an IntegrityError.
    `unique_messages` (constraint name -> sentence) says it the way a merchant would."""

    merchant = None
    unique_messages: dict[str, str] = {}

    def validate_unique(self):
        model = self._meta.model
        for constraint in model._meta.constraints if self.merchant is not None else ():
            if not isinstance(constraint, models.UniqueConstraint) or constraint.condition is not None:
                continue
            if constraint.fields[:1] != ("merchant",):
                continue
            fields = constraint.fields[1:]
            values = {name: self.cleaned_data.get(name) for name in fields}
            if any(value in (None, "") for value in values.values()) or any(name in self.errors for name in fields):
                continue  # not on this form, or already wrong: nothing to compare
            if model.objects.for_merchant(self.merchant).filter(**values).exclude(pk=self.instance.pk).exists():
                message = self.unique_messages.get(constraint.name, _("You have one with these values already."))
                self.add_error(fields[-1], message)
        super().validate_unique()


class ServiceSavedAdminMixin:
    """For a TenantModelAdmin whose add and change forms write through a service (which checks again what the form
    checked, so no door skips a rule): `save_fields` are the fields the service takes, `create_object` and
    `update_object` call it. A refusal (ApplicationError) is shown on the form and nothing is saved
    (CheckedAdminMixin)."""

    save_fields: frozenset[str] = frozenset()
    # Defined by each admin, as methods calling its services: create_object(request, **fields) returns the row
    # written; update_object(request, obj, **fields) changes `obj`.
    create_object: Callable[..., models.Model]
    update_object: Callable[..., None]

    def save_model(self, request, obj, form, change):
        fields = {name: getattr(obj, name) for name in self.save_fields}
        if change:
            self.update_object(request, obj, **fields)
            return
        saved = self.create_object(request, **fields)
        # The admin goes on with `obj` (its history entry, the redirect to the new row): make it the row written.
        for field in obj._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding, obj._state.db = False, saved._state.db


class ReadOnlyTenantAdmin(TenantModelAdmin):
    """Event records: looked at and filtered, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyTenantInline(admin.TabularInline):
    """Records shown under another one (audit trails, attempts): the merchant's own, never added, changed or
    deleted by hand."""

    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).for_merchant(request.merchant)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return getattr(request, "membership", None) is not None
