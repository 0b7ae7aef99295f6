"""Public beacons of referral.js under /t/ (no API key: the browser on the shop's page calls them)."""

from django.urls import path

from integrations import views

urlpatterns = [
    path("ga", views.ga_click, name="ga-click"),
]
