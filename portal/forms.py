"""Portal forms (labels and errors are translated)."""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from programs.fields import CustomerEmailFormField
from referral_saas.validators import validate_single_line


class JoinForm(forms.Form):
    email = CustomerEmailFormField(label=_("Your email"), widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    name = forms.CharField(
        label=_("Your first name"),
        max_length=200,
        required=False,
        validators=[validate_single_line],
        widget=forms.TextInput(attrs={"autocomplete": "given-name"}),
    )
    marketing_consent = forms.BooleanField(label=_("Send me news and offers from this shop"), required=False)
    accept_terms = forms.BooleanField(label=_("I accept the program terms"), required=True)

    def __init__(self, *args, with_terms: bool = True, **kwargs):
        """`with_terms`: the program has terms to read in this language. Without them there is nothing to accept, so
        no box to tick."""
        super().__init__(*args, **kwargs)
        if not with_terms:
            del self.fields["accept_terms"]


class InviteForm(forms.Form):
    emails = forms.CharField(
        label=_("Your friends' emails"),
        help_text=_("Up to 10, separated by commas or new lines."),
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        max_length=3000,
    )
    message = forms.CharField(
        label=_("A personal message (optional)"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def email_list(self) -> list[str]:
        return [e for e in re.split(r"[\s,;]+", self.cleaned_data["emails"]) if e]


class WelcomeForm(forms.Form):
    """The friend's email on the welcome page, for their sign-up reward."""

    email = CustomerEmailFormField(label=_("Your email"), widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    ref = forms.CharField(widget=forms.HiddenInput, max_length=64)
    rs_click = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
