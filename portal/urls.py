"""The referrer portal's pages, under a language prefix (/<language>/p/...: referral_saas/urls.py)."""

from django.urls import path

from portal.views import account, dashboard, leaderboard, rewards, welcome

urlpatterns = [
    path("<slug:merchant>/<slug:program>/", dashboard.home, name="portal_home"),
    path("<slug:merchant>/<slug:program>/join/", account.join, name="portal_join"),
    path("<slug:merchant>/<slug:program>/sign-in/<text:token>/", account.sign_in, name="portal_sign_in"),
    path("<slug:merchant>/<slug:program>/sso/", account.sso, name="portal_sso"),
    path("<slug:merchant>/<slug:program>/invite/", dashboard.invite, name="portal_invite"),
    path("<slug:merchant>/<slug:program>/share/<slug:channel>/", dashboard.share, name="portal_share"),
    path("<slug:merchant>/<slug:program>/redeem/", rewards.redeem, name="portal_redeem"),
    path("<slug:merchant>/<slug:program>/qr.<text:fmt>", dashboard.qr_code, name="portal_qr"),
    path("<slug:merchant>/<slug:program>/my-data.json", account.export_data, name="portal_export"),
    path("<slug:merchant>/<slug:program>/delete/", account.delete_account, name="portal_delete"),
    path("<slug:merchant>/<slug:program>/sign-out/", account.sign_out, name="portal_sign_out"),
    path("<slug:merchant>/<slug:program>/test-referrer/", account.test_referrer, name="portal_test_referrer"),
    path("<slug:merchant>/<slug:program>/leaderboard/", leaderboard.leaderboard, name="portal_leaderboard"),
    path("<slug:merchant>/<slug:program>/welcome/", welcome.welcome, name="portal_welcome"),
    path("<slug:merchant>/<slug:program>/welcome/gift.json", welcome.welcome_gift_status, name="portal_welcome_gift"),
]
