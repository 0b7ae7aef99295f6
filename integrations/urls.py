from django.urls import path

from integrations import views

app_name = "integrations"

urlpatterns = [
    path("<slug:provider>/<str:token>/webhook", views.webhook, name="webhook"),
]
