from django.urls import path

from analytics import views

urlpatterns = [
    path("<slug:merchant>/<slug:program>/leaderboard/", views.leaderboard, name="portal_leaderboard"),
]
