"""Webhooks out: per-merchant endpoints, Standard Webhooks signing, logged and retried deliveries."""
