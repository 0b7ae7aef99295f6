"""A shared /p/<shop>/<program>/... link, without a language: redirects to the visitor's language (see
portal.views.base.language_redirect)."""

from django.urls import path

from portal.views.base import language_redirect

urlpatterns = [
    path("<slug:merchant>/<slug:program>/", language_redirect),
    path("<slug:merchant>/<slug:program>/<path:rest>", language_redirect),
]
