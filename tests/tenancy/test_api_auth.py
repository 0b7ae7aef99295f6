"""API keys: shown once, hashed at rest, revocable; every bad key is a JSON 401 that costs the same."""

from __future__ import annotations

import hashlib

import pytest
from rest_framework.test import APIClient

from referral_saas.tenancy import services
from referral_saas.tenancy.models import ApiKey, Merchant
from tests.factories import make_api_key

pytestmark = pytest.mark.django_db


def _client(raw: str | None = None, header: str | None = None) -> APIClient:
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    elif raw is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_me_names_the_merchant_and_mode(tenant):
    response = tenant.api.get("/api/v1/me")
    assert response.status_code == 200
    body = response.json()
    assert body["merchant"]["slug"] == tenant.merchant.slug
    assert body["mode"] == "live"
    assert body["key"] == f"rk_live_…{tenant.raw_key[-4:]}"


def test_test_mode_key_says_test(tenant):
    _key, raw = make_api_key(tenant.merchant, mode=ApiKey.Mode.TEST)
    assert raw.startswith("rk_test_")
    assert _client(raw).get("/api/v1/me").json()["mode"] == "test"


def test_only_the_hash_and_last_four_characters_are_stored(tenant):
    row = ApiKey.objects.for_merchant(tenant.merchant).get(pk=tenant.api_key.pk)
    assert row.key_hash == hashlib.sha256(tenant.raw_key.encode()).hexdigest()
    assert row.last4 == tenant.raw_key[-4:]
    stored = " ".join(str(getattr(row, f.attname)) for f in ApiKey._meta.concrete_fields)
    assert tenant.raw_key not in stored
    assert tenant.raw_key[len("rk_live_") : -4] not in stored


def test_missing_key_is_401_not_authenticated():
    response = _client().get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer rk_live_doesnotexist",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "rk_live_withoutscheme",
        "Bearer " + "x" * 5000,
        "Bearer rk_live_\x00\x01",
    ],
)
def test_malformed_or_unknown_key_is_401_with_the_error_shape(tenant, header):
    response = _client(header=header).get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_revoked_key_is_refused_like_an_unknown_one(tenant):
    services.apikey_revoke(merchant=tenant.merchant, api_key_id=tenant.api_key.pk)
    revoked = _client(tenant.raw_key).get("/api/v1/me")
    unknown = _client("rk_live_" + "A" * 40).get("/api/v1/me")
    assert revoked.status_code == unknown.status_code == 401
    assert revoked.json() == unknown.json()


def test_every_kind_of_bad_key_costs_at_most_one_lookup_and_repeats_none(tenant, django_assert_max_num_queries):
    services.apikey_revoke(merchant=tenant.merchant, api_key_id=tenant.api_key.pk)
    for header in ("Bearer " + tenant.raw_key, "Bearer rk_live_" + "B" * 40, "Bearer garbage", "Token abc"):
        with django_assert_max_num_queries(1):
            assert _client(header=header).get("/api/v1/me").status_code == 401
        with django_assert_max_num_queries(0):  # the refusal is cached: guessing costs the database nothing
            assert _client(header=header).get("/api/v1/me").status_code == 401


def test_a_revoked_key_cannot_be_cached_back_as_valid(tenant):
    from django.core.cache import cache

    from referral_saas.tenancy.services import _apikey_cache_key, _cache_add

    services.apikey_revoke(merchant=tenant.merchant, api_key_id=tenant.api_key.pk)
    # A reader that loaded the key just before the revocation tries to cache it afterwards: it may only add.
    _cache_add(_apikey_cache_key(tenant.api_key.key_hash), tenant.api_key)
    assert cache.get(_apikey_cache_key(tenant.api_key.key_hash)) == "none"
    assert tenant.api.get("/api/v1/me").status_code == 401


def test_last_used_at_is_recorded_at_most_once_a_minute(tenant, django_assert_num_queries):
    assert tenant.api_key.last_used_at is None
    tenant.api.get("/api/v1/me")
    tenant.api_key.refresh_from_db()
    first = tenant.api_key.last_used_at
    assert first is not None
    with django_assert_num_queries(0):  # the key comes from the cache, and no second write within the minute
        tenant.api.get("/api/v1/me")
    tenant.api_key.refresh_from_db()
    assert tenant.api_key.last_used_at == first


def test_suspended_merchant_keys_stop_working_at_once(tenant):
    assert tenant.api.get("/api/v1/me").status_code == 200  # the key is now cached
    services.merchant_set_status(merchant=tenant.merchant, status=Merchant.Status.SUSPENDED)
    response = tenant.api.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    services.merchant_set_status(merchant=tenant.merchant, status=Merchant.Status.ACTIVE)
    assert tenant.api.get("/api/v1/me").status_code == 200


def test_keys_of_two_merchants_see_their_own_merchant(tenant, other_tenant):
    assert tenant.api.get("/api/v1/me").json()["merchant"]["slug"] == tenant.merchant.slug
    assert other_tenant.api.get("/api/v1/me").json()["merchant"]["slug"] == other_tenant.merchant.slug


def test_a_merchant_in_the_body_or_query_is_ignored(tenant, other_tenant):
    response = tenant.api.get(f"/api/v1/me?merchant={other_tenant.merchant.slug}")
    assert response.json()["merchant"]["slug"] == tenant.merchant.slug
