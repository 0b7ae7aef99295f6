"""The referrer portal's pages, under a language prefix (/<language>/p/...: referral_saas/urls.py)."""

from django.urls import path

from portal import views

urlpatterns = [
    path("<slug:merchant>/<slug:program>/", views.home, name="portal_home"),
    path("<slug:merchant>/<slug:program>/join/", views.join, name="portal_join"),
    path("<slug:merchant>/<slug:program>/sign-in/<text:token>/", views.sign_in, name="portal_sign_in"),
    path("<slug:merchant>/<slug:program>/sso/", views.sso, name="portal_sso"),
    path("<slug:merchant>/<slug:program>/invite/", views.invite, name="portal_invite"),
    path("<slug:merchant>/<slug:program>/share/<slug:channel>/", views.share, name="portal_share"),
    path("<slug:merchant>/<slug:program>/redeem/", views.redeem, name="portal_redeem"),
    path("<slug:merchant>/<slug:program>/qr.<text:fmt>", views.qr_code, name="portal_qr"),
    path("<slug:merchant>/<slug:program>/my-data.json", views.export_data, name="portal_export"),
    path("<slug:merchant>/<slug:program>/delete/", views.delete_account, name="portal_delete"),
    path("<slug:merchant>/<slug:program>/sign-out/", views.sign_out, name="portal_sign_out"),
    path("<slug:merchant>/<slug:program>/leaderboard/", views.leaderboard, name="portal_leaderboard"),
]
