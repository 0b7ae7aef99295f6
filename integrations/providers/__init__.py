"""The provider registry: one instance per platform, looked up by its name (the URL's <provider>)."""

from __future__ import annotations

from integrations.providers.base import Provider
from integrations.providers.shopify import Shopify
from integrations.providers.stripe import Stripe
from integrations.providers.woocommerce import WooCommerce

REGISTRY: dict[str, Provider] = {provider.name: provider for provider in (Shopify(), WooCommerce(), Stripe())}


def provider_for(name: str) -> Provider | None:
    return REGISTRY.get(name)
