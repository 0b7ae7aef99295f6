from django.urls import path

from programs import api

urlpatterns = [
    path("programs", api.ProgramListApi.as_view(), name="programs"),
    path("programs/<slug:slug>", api.ProgramDetailApi.as_view(), name="program-detail"),
]
