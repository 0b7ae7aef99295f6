"""Template helpers for the portal."""

from __future__ import annotations

from django import template
from django.conf import settings
from django.utils.translation import get_language, get_language_info

register = template.Library()


@register.simple_tag(takes_context=True)
def language_choices(context) -> list[dict]:
    """Each portal language with the current page's address in it (the switcher posts that as `next`)."""
    request = context["request"]
    current = get_language()
    path = request.get_full_path()
    prefix = f"/{current}/"
    rest = path[len(prefix) :] if path.startswith(prefix) else path.lstrip("/")
    return [
        {
            "code": code,
            "name": get_language_info(code)["name_local"].capitalize(),
            "next": f"/{code}/{rest}",
            "current": code == current,
        }
        for code, _name in settings.LANGUAGES
    ]
