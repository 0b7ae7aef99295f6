from django.urls import path

from tracking import api

# Conversions and their refunds are routed by rewards.urls_api (a conversion answers with its fraud score and rewards).
urlpatterns = [
    path("participants", api.ParticipantListCreateApi.as_view(), name="participants"),
    path("participants/<key:ref>", api.ParticipantDetailApi.as_view(), name="participant-detail"),
    path("codes/<text:code>", api.CodeCheckApi.as_view(), name="code-check"),
    path("referrals", api.ReferralListCreateApi.as_view(), name="referrals"),
]
