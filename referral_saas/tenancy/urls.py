from django.urls import path

from referral_saas.tenancy import views

urlpatterns = [
    path("invitations/<text:token>/", views.invitation_accept, name="invitation_accept"),
    path("new-shop/", views.new_shop, name="new_shop"),
]
