"""`make bench` measures the web servers we ship, as shipped: read from the Procfile and the Dockerfile."""

from __future__ import annotations

import json
import shlex

import pytest

from bench.harness import ROOT, shipped_servers


def _web_lines() -> tuple[list[str], list[str]]:
    procfile = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    cmd = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD "))
    return shlex.split(procfile.split(":", 1)[1]), json.loads(cmd[4:])


def test_the_loop_benchmark_runs_the_procfile_and_dockerfile_servers_without_reload_or_their_address():
    procfile, dockerfile = _web_lines()
    servers = {server.name: server for server in shipped_servers()}
    assert set(servers) == {"Procfile", "Dockerfile"}
    for server, argv in ((servers["Procfile"], procfile), (servers["Dockerfile"], dockerfile)):
        assert "--reload" not in server.args
        assert "--bind" not in server.args
        assert "referral_saas.wsgi" in argv
        kept = [arg for arg in argv[1:] if arg not in ("--reload", "referral_saas.wsgi")]
        bind = kept.index("--bind")
        assert list(server.args) == kept[:bind] + kept[bind + 2 :]


@pytest.mark.django_db(transaction=True)
def test_the_floor_replays_one_orders_own_statements_as_new_orders(tenant, program):
    from bench import floor
    from tests.factories import join
    from tracking.models import Conversion, Referral

    codes = [join(program, external_id=f"r{i}", email=f"r{i}@example.com")[1].code for i in range(2)]
    captured = floor._capture({"key": tenant.raw_key, "codes": codes, "merchant": tenant.merchant})
    assert floor._names(captured) == [
        "rs_idempotency_lookup", "rs_attribution_facts", "rs_insert_tracking_referral_tracking_conversion",
        "rs_insert_tenancy_idempotencyrecord",
    ]  # fmt: skip
    result = floor.database_rate(captured, seconds=1, clients=2)
    replayed = Conversion.objects.for_merchant(tenant.merchant).exclude(order_id__startswith="floor")
    assert result["orders"] >= 1
    assert replayed.count() == result["orders"]  # each replay a new order, with its friend's new referral
    assert Referral.objects.for_merchant(tenant.merchant).filter(conversions__in=replayed).count() == result["orders"]
