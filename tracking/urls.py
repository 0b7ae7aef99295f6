from django.urls import path

from tracking import api

urlpatterns = [
    path("codes/<text:code>", api.CodeCheckApi.as_view(), name="code-check"),
    path("referrals", api.ReferralListCreateApi.as_view(), name="referrals"),
    path("conversions", api.ConversionListCreateApi.as_view(), name="conversions"),
    # An order id may contain slashes ("FV/2026/11/1001"): the refunds route is tried first.
    path("conversions/<key:order_id>/refunds", api.RefundCreateApi.as_view(), name="refunds"),
    path("conversions/<key:order_id>", api.ConversionDetailApi.as_view(), name="conversion-detail"),
]
