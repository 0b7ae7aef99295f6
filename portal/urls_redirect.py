"""A shared /p/<shop>/<program>/... link, without a language: redirects to the visitor's language (see
views.language_redirect)."""

from django.urls import path

from portal import views

urlpatterns = [
    path("<slug:merchant>/<slug:program>/", views.language_redirect),
    path("<slug:merchant>/<slug:program>/<path:rest>", views.language_redirect),
]
