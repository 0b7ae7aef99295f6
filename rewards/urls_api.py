from django.urls import path

from rewards import api

urlpatterns = [
    path("rewards", api.RewardListApi.as_view(), name="rewards"),
    path("rewards/<text:reward_id>", api.RewardDetailApi.as_view(), name="reward-detail"),
    path("rewards/<text:reward_id>/redeem", api.RewardRedeemApi.as_view(), name="reward-redeem"),
    path("participants/<key:ref>/points", api.PointsApi.as_view(), name="participant-points"),
    path("participants/<key:ref>/points/redeem", api.PointsRedeemApi.as_view(), name="participant-points-redeem"),
]
