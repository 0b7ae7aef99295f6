from django.http import HttpResponse
from django.shortcuts import render
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView


def home(request):
    return render(request, "home.html")


class _DocumentationPage:
    """drf-spectacular's documentation pages render HTML templates only, and DRF answers OPTIONS with a metadata
    body that no template renders (TemplateDoesNotExist: a 500). They answer OPTIONS like any other page: 200 with
    the Allow header (DRF adds it) and no body."""

    def options(self, request, *args, **kwargs):
        return HttpResponse()


class SwaggerView(_DocumentationPage, SpectacularSwaggerView):
    pass


class RedocView(_DocumentationPage, SpectacularRedocView):
    pass
