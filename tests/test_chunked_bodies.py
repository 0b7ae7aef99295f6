"""Request bodies sent with `Transfer-Encoding: chunked` (no Content-Length), as gunicorn hands them to the WSGI
application: already de-chunked in `wsgi.input`, CONTENT_LENGTH missing. Django alone read such a body as empty
("field required"); the application reads it, up to the API's limit, and answers 413 beyond it.

These call `referral_saas.wsgi.application` (what gunicorn serves) with a hand-built environ: the test client
would always add a CONTENT_LENGTH.
"""

from __future__ import annotations

import json
from unittest import mock

import pytest
from django.conf import settings

from programs.models import Participant
from referral_saas.wsgi import OTHER_MAX_BODY_BYTES
from tests.factories import ProgramFactory
from tests.wsgi_calls import call_wsgi, wsgi_environ

pytestmark = pytest.mark.django_db(transaction=True)  # the real handler opens and closes connections per request


def _call(path: str, body: bytes, *, key: str | None = None, chunked: bool = True, **extra) -> tuple[int, dict, bytes]:
    if key:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    length = None if chunked else len(body)
    return call_wsgi(wsgi_environ(path, body, length=length, content_type="application/json", **extra))


@pytest.fixture
def shop(tenant):
    ProgramFactory(merchant=tenant.merchant, slug="friends")
    return tenant


def _participant(**extra) -> bytes:
    return json.dumps({"program": "friends", "external_id": "c-7", "email": "chunky@x.example", **extra}).encode()


def test_a_chunked_json_post_is_read_and_creates_the_participant(shop):
    status, headers, content = _call("/api/v1/participants", _participant(name="Chunky"), key=shop.raw_key)

    assert status == 201, content
    assert json.loads(content)["external_id"] == "c-7"
    assert headers["X-Request-ID"]
    assert Participant.objects.for_merchant(shop.merchant).get(external_id="c-7").name == "Chunky"


def test_a_chunked_body_of_exactly_the_limit_is_read(shop):
    body = _participant()
    body = body[:-1] + b" " * (settings.API_MAX_BODY_BYTES - len(body)) + b"}"
    assert len(body) == settings.API_MAX_BODY_BYTES

    status, _headers, content = _call("/api/v1/participants", body, key=shop.raw_key)

    assert status == 201, content


def test_a_chunked_body_over_the_limit_is_a_json_413_and_the_rest_is_only_thrown_away(shop):
    body = _participant(user_agent="x" * (4 * settings.API_MAX_BODY_BYTES))

    with mock.patch("referral_saas.wsgi._TrackedInput.drain", autospec=True, side_effect=_no_drain) as drain:
        status, headers, content = _call("/api/v1/participants", body, key=shop.raw_key)

    assert status == 413
    assert headers["Content-Type"] == "application/json"
    assert json.loads(content)["error"]["code"] == "payload_too_large"
    assert headers["X-Request-ID"]
    # The answer was decided on the first limit + 1 bytes; the rest is drained (tests/test_unread_bodies.py).
    assert drain.call_args.args[0].consumed <= settings.API_MAX_BODY_BYTES + 1
    assert not Participant.objects.for_merchant(shop.merchant).exists()


def _no_drain(tracked, sock) -> bool:
    return True


def test_a_chunked_body_over_the_limit_is_a_413_before_authentication(db):
    status, _headers, content = _call("/api/v1/participants", b"{" + b" " * settings.API_MAX_BODY_BYTES + b"}")
    assert status == 413
    assert json.loads(content)["error"]["code"] == "payload_too_large"


def test_a_content_length_over_the_limit_is_a_json_413_too(shop):
    body = _participant(user_agent="x" * settings.API_MAX_BODY_BYTES)

    status, _headers, content = _call("/api/v1/participants", body, key=shop.raw_key, chunked=False)

    assert status == 413
    assert json.loads(content)["error"]["code"] == "payload_too_large"
    assert not Participant.objects.for_merchant(shop.merchant).exists()


def test_a_body_with_a_content_length_is_left_to_django(shop):
    status, _headers, content = _call("/api/v1/participants", _participant(), key=shop.raw_key, chunked=False)
    assert status == 201, content


def test_an_empty_chunked_body_is_an_empty_body(shop):
    status, _headers, content = _call("/api/v1/participants", b"", key=shop.raw_key)
    assert status == 400
    assert json.loads(content)["error"]["code"] in ("validation_error", "malformed_json")


def test_outside_the_api_a_chunked_body_has_a_larger_limit_and_a_plain_413(db):
    status, headers, content = _call("/accounts/login/", b"x" * (OTHER_MAX_BODY_BYTES + 1))
    assert status == 413
    assert headers["Content-Type"].startswith("text/plain")
    assert b"over" in content
