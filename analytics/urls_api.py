from django.urls import path

from analytics import api

urlpatterns = [
    path("stats", api.StatsApi.as_view(), name="stats"),
]
