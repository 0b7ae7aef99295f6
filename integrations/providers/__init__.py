"""The provider registry: one instance per platform, looked up by its name (the URL's <provider>)."""

from __future__ import annotations

from integrations.providers.base import Provider
from integrations.providers.ga4 import GoogleAnalytics
from integrations.providers.hubspot import HubSpot
from integrations.providers.klaviyo import Klaviyo
from integrations.providers.mailchimp import Mailchimp
from integrations.providers.marketing import MarketingTool
from integrations.providers.salesforce import Salesforce
from integrations.providers.shopify import Shopify
from integrations.providers.stripe import Stripe
from integrations.providers.woocommerce import WooCommerce

REGISTRY: dict[str, Provider] = {
    provider.name: provider
    for provider in (
        Shopify(),
        WooCommerce(),
        Stripe(),
        Klaviyo(),
        Mailchimp(),
        HubSpot(),
        Salesforce(),
        GoogleAnalytics(),
    )
}


def provider_for(name: str) -> Provider | None:
    return REGISTRY.get(name)


def marketing_tool_for(name: str) -> MarketingTool | None:
    tool = REGISTRY.get(name)
    return tool if isinstance(tool, MarketingTool) else None
