from django.urls import path

from rewards import api
from rewards.api import conversions
from rewards.api.codes import CodeCheckApi
from tracking.api import RefundCreateApi

urlpatterns = [
    path("codes/<text:code>", CodeCheckApi.as_view(), name="code-check"),
    path("rewards", api.RewardListApi.as_view(), name="rewards"),
    path("rewards/<text:reward_id>", api.RewardDetailApi.as_view(), name="reward-detail"),
    path("rewards/<text:reward_id>/redeem", api.RewardRedeemApi.as_view(), name="reward-redeem"),
    path("participants/<key:ref>/points", api.PointsApi.as_view(), name="participant-points"),
    path("participants/<key:ref>/points/redeem", api.PointsRedeemApi.as_view(), name="participant-points-redeem"),
    # Conversions answer with their fraud score and rewards. An order id may contain slashes ("FV/2026/11/1001"):
    # the refunds route (tracking's view) is tried first.
    path("conversions", conversions.ConversionListCreateApi.as_view(), name="conversions"),
    path("conversions/<key:order_id>/refunds", RefundCreateApi.as_view(), name="refunds"),
    path("conversions/<key:order_id>", conversions.ConversionDetailApi.as_view(), name="conversion-detail"),
]
