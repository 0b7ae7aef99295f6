"""Form posts are UTF-8. A form body that names another charset is a 400, with DEBUG on and off, on every form page.

Django refused some charsets (BadRequest) and crashed on others (a non-text codec), and raised again each time
request.POST was read: CsrfViewMiddleware reads it first, DEBUG's error page read it again, and that second error
escaped Django (gunicorn's bare 500, no request id). These call `referral_saas.wsgi.application`, what gunicorn
serves (the test client builds its own request objects); tests/system/test_hostile.py sends the same bytes to the
real servers.
"""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from referral_saas.wsgi import Request
from tests.wsgi_calls import call_wsgi, wsgi_environ

pytestmark = pytest.mark.django_db(transaction=True)  # the real handler opens and closes connections per request

CSRF_SECRET = "a" * 32
REFUSED = ["latin-1", "utf-16", "utf-32", "xyz", "rot13", "ascii", "utf-8-sig"]
FORM_PAGES = ["/accounts/login/", "/accounts/signup/", "/accounts/password/reset/", "/i18n/setlang/", "/admin/login/"]


def _post(path: str, content_type: str, body: bytes) -> tuple[int, dict, bytes]:
    extra = {"HTTP_COOKIE": f"csrftoken={CSRF_SECRET}", "HTTP_ACCEPT_LANGUAGE": "en"}
    return call_wsgi(wsgi_environ(path, body, length=len(body), content_type=content_type, **extra))


def _form(charset: str | None, login: str = "%E9") -> tuple[str, bytes]:
    content_type = "application/x-www-form-urlencoded" + (f"; charset={charset}" if charset else "")
    return content_type, f"csrfmiddlewaretoken={CSRF_SECRET}&login={login}&password=x&language=pl".encode()


@pytest.mark.parametrize("debug", [True, False], ids=["DEBUG on", "DEBUG off"])
@pytest.mark.parametrize("charset", REFUSED)
def test_a_form_post_in_another_charset_is_a_400_with_a_request_id(settings, debug, charset):
    settings.DEBUG = debug
    for path in FORM_PAGES:
        status, headers, content = _post(path, *_form(charset))
        assert status == 400, (path, content[:300])
        assert headers["X-Request-ID"]
        if not debug:
            assert b"We could not understand that request." in content


@pytest.mark.parametrize("charset", ["latin-1", "xyz", "hex"])
def test_a_multipart_form_in_another_charset_is_a_400_too(settings, charset):
    settings.DEBUG = True
    body = (
        f'--xx\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n{CSRF_SECRET}\r\n'
        '--xx\r\nContent-Disposition: form-data; name="login"\r\n\r\n\xe9\r\n--xx--\r\n'
    ).encode("latin-1")
    status, headers, _content = _post("/accounts/login/", f"multipart/form-data; boundary=xx; charset={charset}", body)
    assert status == 400
    assert headers["X-Request-ID"]


@pytest.mark.parametrize("charset", [None, "utf-8", "UTF-8", "utf8", '"utf-8"'])
def test_a_utf8_form_post_is_read_whatever_the_spelling_of_its_charset(settings, charset):
    settings.DEBUG = True
    status, _headers, content = _post("/accounts/login/", *_form(charset, login="n%C3%B3body%40shop.example"))
    assert status == 200  # the login form again, with its error: the post was read and the CSRF token found
    assert 'value="nóbody@shop.example"'.encode() in content  # read as UTF-8


def test_the_form_of_a_refused_charset_reads_once_and_then_as_empty():
    request = Request(
        RequestFactory().post("/x", b"a=%E9", content_type="application/x-www-form-urlencoded; charset=latin-1").environ
    )
    from django.core.exceptions import BadRequest

    with pytest.raises(BadRequest):
        request.POST  # noqa: B018 - reading it is the point
    assert request.POST == {}  # what an error page reads: no second error
