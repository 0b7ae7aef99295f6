"""The one email input of a customer's address, for the shop API (serializers), the portal forms and the admin:
each runs identity.validate_customer_email, so a refused address is refused at every door alike."""

from __future__ import annotations

from django import forms
from django.core.validators import EmailValidator
from rest_framework import serializers

from programs.identity import EMAIL_MAX_LENGTH, validate_customer_email


class CustomerEmailField(serializers.EmailField):
    """DRF: a customer's email (schema: string, format email). Refused as a 400 naming the field."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", EMAIL_MAX_LENGTH)
        super().__init__(**kwargs)
        # DRF's own EmailValidator is the laxer check ours includes: keep one, so an error is said once.
        self.validators = [v for v in self.validators if not isinstance(v, EmailValidator)]
        self.validators.append(validate_customer_email)


class CustomerEmailFormField(forms.EmailField):
    """Django forms (portal, admin): a customer's email."""

    default_validators = [validate_customer_email]

    def __init__(self, **kwargs):
        kwargs["max_length"] = min(kwargs.get("max_length") or EMAIL_MAX_LENGTH, EMAIL_MAX_LENGTH)
        super().__init__(**kwargs)
