"""The tenant base for every shop-API view: the merchant and mode come from the API key, never from the body."""

from __future__ import annotations

from rest_framework.views import APIView


class TenantAPIView(APIView):
    """Sets `request.merchant` and `request.livemode`; subclasses scope every query with them."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authenticates and checks permissions first
        request.merchant = request.auth.merchant
        request.livemode = request.auth.mode == request.auth.Mode.LIVE
