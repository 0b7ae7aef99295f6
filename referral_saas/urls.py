from django.conf import settings
from django.conf.urls.i18n import i18n_patterns
from django.urls import include, path, register_converter
from django.views.i18n import set_language
from drf_spectacular.views import SpectacularAPIView

from referral_saas import health, views
from referral_saas.converters import KeyConverter, TextConverter
from referral_saas.tenancy.admin_site import merchant_admin, ops_admin
from referral_saas.tenancy.api import MeApi
from tracking import demo
from tracking.views import bare_redirect, referral_redirect

register_converter(TextConverter, "text")  # before include() imports the apps' URLconfs
register_converter(KeyConverter, "key")

api_v1 = [
    path("me", MeApi.as_view(), name="me"),
    # rewards before programs: "participants/<key:ref>/points" must be tried before "participants/<key:ref>", as a
    # participant's external id may contain slashes.
    path("", include("rewards.urls_api")),
    path("", include("programs.urls_api")),
    path("", include("tracking.urls")),
    path("", include("analytics.urls_api")),
    path("", include("referral_saas.webhooks.urls_api")),
    path("", include("integrations.urls_api")),  # Zapier REST hooks
]

urlpatterns = [
    path("", views.home, name="home"),
    path("r/<text:code>", referral_redirect, name="referral_redirect"),
    path("healthz", health.healthz, name="healthz"),
    path("demo-shop/", demo.storefront, name="demo_shop"),
    path("i18n/setlang/", set_language, name="set_language"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", merchant_admin.urls),
    path("ops/", ops_admin.urls),
    path("accounts/", include("referral_saas.tenancy.urls")),
    path("accounts/", include("allauth.urls")),
    path("integrations/", include("integrations.urls")),
    path("t/", include("integrations.urls_beacon")),  # referral.js's GA4 click beacon (POST /t/ga)
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", views.SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", views.RedocView.as_view(url_name="schema"), name="redoc"),
]

# The referrer portal lives under a language prefix (/en/p/..., /pl/p/...). A shared /p/<shop>/<program>/ link
# redirects to the visitor's language: the switcher's cookie, else Accept-Language, else the program's language.
urlpatterns += [path("p/", include("portal.urls_redirect"))]
urlpatterns += i18n_patterns(path("p/", include("portal.urls")))

if settings.BENCH_ENDPOINTS:
    urlpatterns.append(path("bench/bare-302", bare_redirect))

handler400 = "referral_saas.errors.bad_request"
handler403 = "referral_saas.errors.permission_denied"
handler404 = "referral_saas.errors.page_not_found"
handler500 = "referral_saas.errors.server_error"
