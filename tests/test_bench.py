"""`make bench` measures the web servers we ship, as shipped: read from the Procfile and the Dockerfile."""

from __future__ import annotations

import json
import shlex

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
