from django.urls import path

from referral_saas.webhooks import api

urlpatterns = [
    path("webhook-endpoints", api.WebhookEndpointListCreateApi.as_view(), name="webhook-endpoints"),
    path("webhook-endpoints/<int:endpoint_id>", api.WebhookEndpointDetailApi.as_view(), name="webhook-endpoint-detail"),
]
