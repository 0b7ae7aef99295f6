from django.urls import path

from tracking import api

urlpatterns = [
    path("codes/<text:code>", api.CodeCheckApi.as_view(), name="code-check"),
    path("referrals", api.ReferralListCreateApi.as_view(), name="referrals"),
    path("conversions", api.ConversionListCreateApi.as_view(), name="conversions"),
    path("conversions/<text:order_id>", api.ConversionDetailApi.as_view(), name="conversion-detail"),
    path("conversions/<text:order_id>/refunds", api.RefundCreateApi.as_view(), name="refunds"),
]
