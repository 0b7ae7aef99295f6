"""Shared fixtures: a merchant with its owner and API client, and a second merchant for isolation checks."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import pytest
from django.test import Client
from kombu import Connection
from rest_framework.test import APIClient

from referral_saas.broker import delete_namespace
from referral_saas.tenancy.models import ApiKey, Membership, Merchant, User
from referral_saas.tenancy.selectors import SESSION_MERCHANT_KEY
from tests.factories import MembershipFactory, MerchantFactory, UserFactory, make_api_key


@dataclass
class Tenant:
    merchant: Merchant
    owner: User
    api_key: ApiKey
    raw_key: str
    api: APIClient
    admin: Client


def _make_tenant(name: str) -> Tenant:
    merchant = MerchantFactory(name=name)
    owner = UserFactory(email=f"owner@{merchant.slug}.example")
    MembershipFactory(merchant=merchant, user=owner, role=Membership.Role.OWNER)
    api_key, raw = make_api_key(merchant)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    admin = staff_client(owner, merchant)
    return Tenant(merchant=merchant, owner=owner, api_key=api_key, raw_key=raw, api=api, admin=admin)


def staff_client(user: User, merchant: Merchant | None = None) -> Client:
    client = Client()
    client.force_login(user)
    if merchant is not None:
        session = client.session
        session[SESSION_MERCHANT_KEY] = merchant.pk
        session.save()
    return client


@pytest.fixture(scope="session", autouse=True)
def _compiled_translations():
    """A fresh checkout has only .po catalogs (compiled here) and no collected static files yet (WhiteNoise
    warns about a missing STATIC_ROOT; the test server finds static files through the finders)."""
    from pathlib import Path

    from django.conf import settings
    from django.core.management import call_command

    call_command("compiletranslations", verbosity=0)
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache (rate limits, cached lookups) without touching other Redis data."""
    yield
    from django.conf import settings

    from referral_saas.redis_client import get_redis

    client = get_redis()
    prefix = settings.REDIS_KEY_PREFIX
    # Cached values (`<prefix>:<version>:<key>`) and rate-limit counters; the run's queues are left to Celery.
    for pattern in (f"{prefix}:1:*", f"{prefix}:rl:*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture(scope="session", autouse=True)
def _own_redis_namespace():
    """The run's keys (queues, unacked messages, click stream, cache) all start with its namespace: removed at the
    end, never another run's."""
    from django.conf import settings

    assert settings.REDIS_NAMESPACE, "tests must run in a Redis namespace of their own"
    yield
    from referral_saas.redis_client import get_redis

    client = get_redis()
    # Every worker a test started took its messages to the end: nothing is left delivered and unacknowledged
    # (the system tier's stacks keep theirs under `<namespace>:sys-<name>:celery:`).
    unacked = {
        key.decode(): client.hlen(key)
        for key in client.scan_iter(match=f"{settings.REDIS_NAMESPACE}:*celery:unacked", count=1000)
    }
    keys = list(client.scan_iter(match=f"{settings.REDIS_NAMESPACE}:*", count=1000))
    if keys:
        client.delete(*keys)
    if settings.BROKER_IS_AMQP:  # a run on RabbitMQ (CELERY_BROKER_URL): its own queues, under its namespace
        with Connection(settings.CELERY_BROKER_URL) as connection:
            delete_namespace(connection, names=settings.CELERY_QUEUE_NAMES, prefix=settings.BROKER_PREFIX)
    assert not any(unacked.values()), f"messages left unacknowledged after the suite: {unacked}"


@pytest.fixture
def tenant(db) -> Tenant:
    return _make_tenant("Alpha Shop")


@pytest.fixture
def other_tenant(db) -> Tenant:
    return _make_tenant("Beta Shop")


@pytest.fixture
def merchant(tenant) -> Merchant:
    return tenant.merchant


@pytest.fixture
def api_client(tenant) -> APIClient:
    return tenant.api


@pytest.fixture
def program(tenant):
    from tests.factories import ProgramFactory

    return ProgramFactory(merchant=tenant.merchant, slug="friends", name="Bring a friend", default_language="pl")


@pytest.fixture
def referrer(program):
    """Anna, a participant of `program`, with her code. Returns (participant, code)."""
    from tests.factories import join

    return join(program, email="anna.kowalska@gmail.com", external_id="c-42", name="Anna Kowalska")


@pytest.fixture
def click_stream():
    """The click buffer, emptied before and after the test (the test Redis database is the suite's own)."""
    from referral_saas.redis_client import get_redis
    from tracking.clicks import STREAM
    from tracking.selectors import local_cache

    client = get_redis()
    client.delete(STREAM)
    local_cache.clear()
    yield client
    client.delete(STREAM)
    local_cache.clear()


@pytest.fixture(autouse=True)
def _redis_breaker_closed():
    """A test that made Redis fail leaves this process's breaker open for seconds: the next test starts without."""
    from referral_saas.redis_client import redis_reset_breaker

    redis_reset_breaker()
    yield
    redis_reset_breaker()


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium (Playwright may not download browsers on this network), installed by `make test`
    (`make chromium`). In CI a missing browser fails these tests: a browser test that quietly skips proves nothing."""
    path = shutil.which("chromium")
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail("chromium is missing: `make chromium` installs Debian's package (root and apt-get needed)")
    pytest.skip("chromium is missing (`make chromium` installs it); CI fails instead of skipping")


# --- pytest-xdist: the system tier in one process, first ------------------------------------------------------------
# `make test` runs two pytest processes, each test file in one of them (--dist loadfile). The system tier's stacks
# (gunicorn, a worker and beat per server configuration) are package fixtures: started once for the package when
# its files run one after another in one process, but started again each time a process comes back to the package
# after other files (20-35 s a start). So the whole of tests/system/ is one work unit, collected first: one process
# starts the stacks once and runs the tier while the other runs every other file.

SYSTEM_TIER = "tests/system/"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    # Stable: the order within the tier (pytest's grouping by parametrized stack) is kept.
    items.sort(key=lambda item: not item.nodeid.startswith(SYSTEM_TIER))


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadFileScheduling

    class SystemTierTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return SYSTEM_TIER if nodeid.startswith(SYSTEM_TIER) else super()._split_scope(nodeid)

    if config.getoption("dist") != "loadfile":
        return None  # another distribution asked for on the command line: xdist's own
    return SystemTierTogether(config, log)
