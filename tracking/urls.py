from django.urls import path

from tracking import api

# Conversions and their refunds are routed by rewards.urls_api (a conversion answers with its fraud score and
# rewards), and so is the code check (it shows the friend's reward rules).
urlpatterns = [
    path("participants", api.ParticipantListCreateApi.as_view(), name="participants"),
    path("participants/<key:ref>", api.ParticipantDetailApi.as_view(), name="participant-detail"),
    path("referrals", api.ReferralListCreateApi.as_view(), name="referrals"),
]
