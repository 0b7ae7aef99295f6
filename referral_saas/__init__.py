"""Referral SaaS: the Django project package and the shared core (tenancy, webhooks)."""

from referral_saas.celery import app as celery_app

__all__ = ["celery_app"]
