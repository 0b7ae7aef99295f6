"""Tenant scoping that fails closed.

`Model.objects` refuses every query that is not scoped with `.for_merchant(merchant)`; a deliberate cross-tenant
query (ops pages, beat sweeps, API-key lookup) says so by name: `Model.all_merchants`. Django's own machinery
(related managers, the admin's base querysets, cascades) uses `all_merchants` as the default manager, and every
place that serves a merchant scopes it again (the tenant admin, the tenant API view).
"""

from __future__ import annotations

from django.db import models


class TenantScopeError(RuntimeError):
    """A tenant-owned model was queried without naming the merchant."""


class TenantQuerySet(models.QuerySet):
    _merchant = None

    def _clone(self):
        clone = super()._clone()
        clone._merchant = self._merchant
        return clone

    def for_merchant(self, merchant) -> TenantQuerySet:
        if merchant is None or (hasattr(merchant, "pk") and merchant.pk is None):
            raise TenantScopeError(f"{self.model.__name__}: for_merchant() needs a saved merchant, got {merchant!r}")
        qs = self.filter(merchant=merchant)
        qs._merchant = merchant
        return qs

    def create(self, **kwargs):
        """Inside a scope, the merchant is filled in, and a different one is refused."""
        if self._merchant is not None:
            given = kwargs.get("merchant", kwargs.get("merchant_id"))
            scope_id = getattr(self._merchant, "pk", self._merchant)
            if given is None:
                kwargs["merchant"] = self._merchant
            elif getattr(given, "pk", given) != scope_id:
                raise TenantScopeError(f"{self.model.__name__}: create() for another merchant inside a scope")
        return super().create(**kwargs)


class AllMerchantsManager(models.Manager.from_queryset(TenantQuerySet)):
    """The explicit, unscoped escape hatch. Also Django's default manager for tenant models."""


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):
    """`Model.objects`: scoped access only."""

    def get_queryset(self):
        raise TenantScopeError(
            f"{self.model.__name__}.objects must be scoped: use {self.model.__name__}.objects.for_merchant(merchant),"
            f" or {self.model.__name__}.all_merchants for a deliberate cross-tenant query."
        )

    def for_merchant(self, merchant) -> TenantQuerySet:
        return super().get_queryset().for_merchant(merchant)
