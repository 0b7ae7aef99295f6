from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from referral_saas import health, views
from referral_saas.tenancy.admin_site import merchant_admin, ops_admin
from referral_saas.tenancy.api import MeApi

api_v1 = [
    path("me", MeApi.as_view(), name="me"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", merchant_admin.urls),
    path("ops/", ops_admin.urls),
    path("accounts/", include("referral_saas.tenancy.urls")),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
]

handler400 = "referral_saas.errors.bad_request"
handler403 = "referral_saas.errors.permission_denied"
handler404 = "referral_saas.errors.page_not_found"
handler500 = "referral_saas.errors.server_error"
