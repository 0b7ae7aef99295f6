from django.urls import path

from integrations import api

urlpatterns = [
    path("hooks", api.HookSubscribeApi.as_view(), name="hooks"),
    path("hooks/<int:hook_id>", api.HookDetailApi.as_view(), name="hook-detail"),
    path("hooks/samples", api.HookSampleApi.as_view(), name="hook-samples"),
]
