from django.urls import path

from integrations import views

app_name = "integrations"

urlpatterns = [
    path("woocommerce/authorized", views.woocommerce_callback, name="woocommerce-callback"),
    path("<slug:provider>/<str:token>/webhook", views.webhook, name="webhook"),
]
