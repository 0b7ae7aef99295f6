from django.urls import path

from referral_saas.tenancy import views

urlpatterns = [
    # Before allauth's own (included after these): the same page, its form saved in one transaction.
    path("signup/", views.SignupView.as_view(), name="account_signup"),
    path("invitations/<text:token>/", views.invitation_accept, name="invitation_accept"),
    path("new-shop/", views.new_shop, name="new_shop"),
]
