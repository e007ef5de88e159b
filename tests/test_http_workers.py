"""Compile workers that reach the registry only over HTTP (``nestml-registry worker --server URL`` with a worker
token): the protocol against a real server on SQLite and PostgreSQL (a stand-in module, its bytes checked),
stolen leases and forged uploads refused, what a worker token may not do; then real worker processes with
no database and an empty home of their own building for a second toolchain, a simulation run resolving
their module, and a worker killed mid-build whose build another worker finishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from api_support import (
    TINY,
    Api,
    api_fixture,
    assert_error_shape,
    model_for,
    running_api,
    sha256_of,
    tag,
    tiny,
    toolchain_details,
)
from bmtk_networks import build_izhikevich_network, read_spikes
from registry_fixtures import TOOLCHAIN, backend_params
from server_fixtures import CLI, ROOT, Server, client_env, start_server

from nestml_registry.registry import queue
from nestml_registry.registry.tables import BuildStatus

api = api_fixture()
W = "/v1/worker"
DATA = Path(__file__).parent / "data"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _queued(api: Api, toolchain: str, t: str | None = None) -> tuple[int, str]:
    """A build queued for ``toolchain`` (published with this machine's local token) and its tag."""
    t = t or tag()
    answer = api.post_build([tiny(t)], toolchain=toolchain)
    assert answer.status_code == 202, answer.text
    return answer.json()["id"], t


def _claim(api: Api, token: str, toolchain: str, worker: str = "node:1:abc") -> dict:
    answer = api.client.post(f"{W}/claim", headers=auth(token),
                             json={"worker_id": worker, "toolchain": toolchain, "lease_seconds": 300})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_build_goes_through_the_protocol(api: Api) -> None:
    toolchain = f"tc-http-{tag()}"
    _, token = api.token("worker", f"node-{tag()}", [toolchain])
    answer = api.client.post(f"{W}/register", headers=auth(token), json={"toolchain": toolchain_details(toolchain)})
    assert answer.status_code == 204, answer.text
    build_id, t = _queued(api, toolchain)
    claimed = _claim(api, token, toolchain)
    assert claimed["id"] == build_id and claimed["sources"][0]["text"].startswith(tiny(t)[1].decode()[:20])
    nothing = api.client.post(f"{W}/claim", headers=auth(token),
                              json={"worker_id": "node:1:abc", "toolchain": toolchain, "lease_seconds": 300})
    assert nothing.status_code == 204
    beat = {"worker_id": "node:1:abc", "toolchain": toolchain, "host": "node", "pid": 1, "alive_for": 60,
            "build_id": build_id}
    renew = api.client.post(f"{W}/builds/{build_id}/renew", headers=auth(token),
                            json={"worker_id": "node:1:abc", "lease_seconds": 300, "stage": "compiling", "beat": beat})
    assert renew.status_code == 204, renew.text
    content = b"\x7fELF a stand-in module " + t.encode()
    name = claimed["request"]["module"]
    params = {"worker_id": "node:1:abc", "sha256": sha256_of(content), "name": name}
    forged = api.client.post(f"{W}/builds/{build_id}/module", headers=auth(token), content=content + b"!",
                             params=params)
    assert_error_shape(forged, 422, "invalid_input")
    assert not api.store.exists(sha256_of(content)) and not api.store.exists(sha256_of(content + b"!"))
    uploaded = api.client.post(f"{W}/builds/{build_id}/module", headers=auth(token), content=content, params=params)
    assert uploaded.status_code == 201 and uploaded.json()["sha256"] == sha256_of(content), uploaded.text
    done = api.client.post(f"{W}/builds/{build_id}/succeeded", headers=auth(token), json={
        "worker_id": "node:1:abc", "diagnostics": [], "log": "built\n", "timings": {"codegen": 1.0},
        "sha256": sha256_of(content), "module_name": name, "models": [model_for(t)]})
    assert done.status_code == 200 and done.json()["status"] == "succeeded", done.text
    build = api.client.get(f"/v1/builds/{build_id}").json()
    assert build["status"] == "succeeded" and build["module"]["sha256"] == sha256_of(content)
    resolved = api.client.get("/v1/resolve", params={"model": f"tiny_{t}_neuron", "toolchain": toolchain}).json()
    assert resolved["module"]["sha256"] == sha256_of(content)
    workers = api.client.get("/v1/workers").json()
    assert any(w["id"].endswith("/node:1:abc") for w in workers), workers
    with api.sessions() as s:  # the build names the worker that built it, and so does the audit log
        assert queue.get_build(s, build_id).built_by.endswith("/node:1:abc")
    _, admin = api.token("admin")
    events = api.client.get("/v1/audit", params={"action": "publish"}, headers=auth(admin)).json()
    assert any(e["details"].get("built_by", "").endswith("/node:1:abc") for e in events), events


def test_a_stolen_lease_and_a_forged_report_are_refused(api: Api) -> None:
    toolchain = api.register_toolchain()
    _, holder = api.token("worker", f"holder-{tag()}", [toolchain])
    _, thief = api.token("worker", f"thief-{tag()}", [toolchain])
    build_id, t = _queued(api, toolchain)
    claimed = _claim(api, holder, toolchain, "node:1:same")
    content = b"a module the thief made"
    params = {"worker_id": "node:1:same", "sha256": sha256_of(content), "name": claimed["request"]["module"]}
    # another token with the same worker id holds nothing: every report is 409 and nothing is stored
    for answer in (
        api.client.post(f"{W}/builds/{build_id}/module", headers=auth(thief), content=content, params=params),
        api.client.post(f"{W}/builds/{build_id}/succeeded", headers=auth(thief), json={
            "worker_id": "node:1:same", "diagnostics": [], "sha256": sha256_of(content),
            "module_name": claimed["request"]["module"], "models": [model_for(t)]}),
        api.client.post(f"{W}/builds/{build_id}/failed", headers=auth(thief),
                        json={"worker_id": "node:1:same", "diagnostics": []}),
        api.client.post(f"{W}/builds/{build_id}/renew", headers=auth(thief), json={
            "worker_id": "node:1:same", "lease_seconds": 300, "beat": {
                "worker_id": "node:1:same", "toolchain": toolchain, "host": "h", "pid": 1, "alive_for": 9}}),
    ):
        assert_error_shape(answer, 409, "lease_lost")
    assert not api.store.exists(sha256_of(content))
    # the holder's report of a module it never uploaded is refused too
    missing = api.client.post(f"{W}/builds/{build_id}/succeeded", headers=auth(holder), json={
        "worker_id": "node:1:same", "diagnostics": [], "sha256": "0" * 64,
        "module_name": claimed["request"]["module"], "models": [model_for(t)]})
    assert_error_shape(missing, 422, "invalid_input")
    with api.sessions() as s:
        build = queue.get_build(s, build_id)
        assert build.status == BuildStatus.RUNNING and build.lease_owner.endswith("/node:1:same")


def _report(api: Api, token: str, build_id: int, worker: str, content: bytes, module: str, models: list[dict]
            ) -> dict:
    params = {"worker_id": worker, "sha256": sha256_of(content), "name": module}
    uploaded = api.client.post(f"{W}/builds/{build_id}/module", headers=auth(token), content=content, params=params)
    assert uploaded.status_code == 201, uploaded.text
    done = api.client.post(f"{W}/builds/{build_id}/succeeded", headers=auth(token), json={
        "worker_id": worker, "diagnostics": [], "sha256": sha256_of(content), "module_name": module, "models": models})
    assert done.status_code == 200, done.text
    return done.json()


def test_a_worker_token_serves_only_its_toolchains(api: Api) -> None:
    """An invented toolchain is recorded, never approved or the default; the token is refused for it (and may
    not claim, beat or characterise for another toolchain, whose sources it would see)."""
    mine, other = api.register_toolchain(), api.register_toolchain()
    token_id, token = api.token("worker", f"node-{tag()}", [mine])
    invented = f"tc-invented-{tag()}"
    refused = api.client.post(f"{W}/register", headers=auth(token), json={"toolchain": toolchain_details(invented)})
    error = assert_error_shape(refused, 403, "toolchain_not_allowed")
    assert f"toolchain approve {invented} --token {token_id}" in error["message"]
    _, admin = api.token("admin")
    audited = api.client.get("/v1/audit", params={"action": "worker_refused"}, headers=auth(admin)).json()
    assert any(e["subject"] == invented for e in audited)
    listed = {tc["id"]: tc for tc in api.client.get("/v1/toolchains").json()}
    assert listed[invented]["approved"] is False and listed[invented]["first_seen_by"].startswith("node-")
    # nothing is queued for it, by name or as the default (the newest seen)
    pushed = api.post_build([tiny(tag())], toolchain=invented)
    assert_error_shape(pushed, 422, "toolchain_not_approved")
    default = api.post_build([tiny(tag())])
    assert default.status_code == 202 and default.json()["toolchain"] != invented
    build_id, _ = _queued(api, other)
    for path, body in (("/claim", {"toolchain": other, "lease_seconds": 60}),
                       ("/characterisations/claim", {"toolchain": other, "lease_seconds": 60}),
                       ("/beat", {"toolchain": other, "host": "h", "pid": 1, "alive_for": 30})):
        answer = api.client.post(W + path, headers=auth(token), json={"worker_id": "n:1:x", **body})
        assert_error_shape(answer, 403, "toolchain_not_allowed")
    with api.sessions() as s:
        assert queue.get_build(s, build_id).status == BuildStatus.QUEUED  # its sources were never handed out
    # an admin approves it for the token: then it may
    with api.sessions.begin() as s:
        from nestml_registry.registry import toolchains

        toolchains.approve(s, invented, "admin", [token_id])
    _, token = api.token("worker", f"node-{tag()}", [mine, invented])
    assert api.client.post(f"{W}/register", headers=auth(token),
                           json={"toolchain": toolchain_details(invented)}).status_code == 204


def test_a_report_is_held_against_the_build_before_anything_is_published(api: Api) -> None:
    toolchain = api.register_toolchain()
    _, token = api.token("worker", f"node-{tag()}", [toolchain])
    victim = tag()
    first, _ = _queued(api, toolchain, victim)
    api.succeed(first, toolchain, [model_for(victim)])
    forgeries = [
        ("another module name", lambda t, module: ("evil_module", [model_for(t)])),
        ("a model the sources never declare", lambda t, module: (module, [model_for(t), model_for(victim)])),
        ("no model at all", lambda t, module: (module, [])),
    ]
    for what, forge in forgeries:
        build_id, t = _queued(api, toolchain)
        claimed = _claim(api, token, toolchain, "n:1:f")
        module, models = forge(t, claimed["request"]["module"])
        answer = _report(api, token, build_id, "n:1:f", f"ELF {what} {t}".encode(), module, models)
        assert answer["status"] == "failed", (what, answer)
        with api.sessions() as s:
            build = queue.get_build(s, build_id)
            assert build.status == BuildStatus.FAILED and build.module_id is None, what
    _, admin = api.token("admin")
    refused = api.client.get("/v1/audit", params={"action": "report_refused"}, headers=auth(admin)).json()
    assert len(refused) >= len(forgeries)  # each refusal is audited
    # the victim's model is untouched: one version, its own module
    versions = api.client.get(f"/v1/models/tiny_{victim}_neuron_nestml").json()["all_versions"]
    assert [v["version"] for v in versions] == [1]
    # a report's source names and digests are the registry's own
    build_id, t = _queued(api, toolchain)
    claimed = _claim(api, token, toolchain, "n:1:g")
    lying = dict(model_for(t), source="other.nestml", source_sha256="0" * 64, nestml_name="someone_else")
    assert _report(api, token, build_id, "n:1:g", f"ELF {t}".encode(), claimed["request"]["module"],
                   [lying])["status"] == "succeeded"
    detail = api.client.get(f"/v1/models/tiny_{t}_neuron_nestml").json()
    assert detail["versions"][0]["source"]["sha256"] == claimed["sources"][0]["sha256"]
    assert detail["versions"][0]["nestml_name"] == f"tiny_{t}_neuron"


def test_liveness_is_on_the_registrys_clock_for_about_a_lease(api: Api) -> None:
    toolchain = api.register_toolchain()
    _, token = api.token("worker", f"node-{tag()}", [toolchain])
    beat = {"worker_id": "n:1:day", "toolchain": toolchain, "host": "h", "pid": 1, "alive_for": 86400}
    assert api.client.post(f"{W}/beat", headers=auth(token), json=beat).status_code == 204
    with api.sessions() as s:
        from nestml_registry.registry.tables import WorkerRow, utcnow

        row = next(w for w in s.query(WorkerRow).all() if w.id.endswith("/n:1:day"))
        lease = api.server.settings.lease_seconds
        assert (row.expires_at - utcnow()).total_seconds() <= max(3 * lease, 30) + 5


def test_a_worker_token_may_do_nothing_else(api: Api) -> None:
    _, token = api.token("worker", f"node-{tag()}")
    _, reader = api.token("reader")
    refused = [
        api.client.get("/v1/models", headers=auth(token)),
        api.client.get("/v1/builds", headers=auth(token)),
        api.post_build([tiny(tag())], token=token),
        api.client.get("/v1/tokens", headers=auth(token)),
        api.client.get("/v1/audit", headers=auth(token)),
        api.client.post("/v1/characterisations", headers=auth(token), json={"all": True}),
    ]
    for answer in refused:
        error = assert_error_shape(answer, 403, "forbidden")
        assert "compile worker's token" in error["message"]
    claim = {"worker_id": "x:1:y", "toolchain": "tc", "lease_seconds": 10}
    assert_error_shape(api.client.post(f"{W}/claim", headers=auth(reader), json=claim), 403, "forbidden")
    with api.bare() as anonymous:
        assert_error_shape(anonymous.post(f"{W}/claim", json=claim), 401, "unauthorized")
    bad = api.client.post(f"{W}/claim", headers=auth(token), json=dict(claim, worker_id="a b/../c"))
    assert_error_shape(bad, 422)


def test_characterisations_go_through_the_protocol(api: Api) -> None:
    toolchain = api.register_toolchain()
    _, token = api.token("worker", f"node-{tag()}", [toolchain])
    _, other = api.token("worker", f"other-{tag()}", [toolchain])
    build_id, t = _queued(api, toolchain)
    sha = api.succeed(build_id, toolchain, [model_for(t)])
    with api.sessions.begin() as s:
        from nestml_registry.registry import characterisations

        version = characterisations.version_row(s, f"tiny_{t}_neuron_nestml", 1)
        characterisations.queue_versions(s, [version.id], toolchain)
    claim = {"worker_id": "node:2:c", "toolchain": toolchain, "lease_seconds": 300}
    claimed = api.client.post(f"{W}/characterisations/claim", headers=auth(token), json=claim)
    assert claimed.status_code == 200 and claimed.json()["module_sha256"] == sha, claimed.text
    char_id = claimed.json()["id"]
    stolen = api.client.get(f"{W}/characterisations/{char_id}/module", headers=auth(other),
                            params={"worker_id": "node:2:c"})
    assert_error_shape(stolen, 409, "lease_lost")
    module = api.client.get(f"{W}/characterisations/{char_id}/module", headers=auth(token),
                            params={"worker_id": "node:2:c"})
    assert module.status_code == 200 and sha256_of(module.content) == sha
    malformed = api.client.post(f"{W}/characterisations/{char_id}/finish", headers=auth(token), json={
        "worker_id": "node:2:c", "seconds": 1.0, "result": {"status": "succeeded", "rheobase_pA": "lots"}})
    assert_error_shape(malformed, 422, "invalid_input")
    done = api.client.post(f"{W}/characterisations/{char_id}/finish", headers=auth(token), json={
        "worker_id": "node:2:c", "seconds": 1.0, "result": {"status": "not_applicable", "reason": "no input"}})
    assert done.status_code == 204, done.text
    doc = api.client.get(f"/v1/models/tiny_{t}_neuron/versions/1/characterisation").json()
    assert doc["status"] == "not_applicable" and doc["reason"] == "no input"


def _check(verdict: str) -> dict:
    row = {"stimulus": "step 10 pA", "spikes": [3, 3 if verdict == "agrees" else 4], "max_spike_time_diff_ms": None,
           "max_vm_diff_mV": 0.01, "agree": verdict == "agrees"}
    return {"verdict": verdict, "against": "nest:iaf_psc_exp", "protocol": 2, "counterparts": 1, "asserted": "",
            "model": "m", "agree": verdict == "agrees", "processes": 1,
            "tolerances": {"spike_ms": 1.0, "drift": 0.01, "vm_mv": 0.5}, "stimuli": [row]}


def test_a_new_toolchain_re_validates_and_a_changed_result_is_flagged(api: Api) -> None:
    """A version built for two toolchains is characterised and checked on each; a verdict that changes on
    the second is flagged on its document and in /healthz problems."""
    first, second = api.register_toolchain(), api.register_toolchain()
    _, token = api.token("worker", f"node-{tag()}", [first, second])
    build_id, t = _queued(api, first)
    api.succeed(build_id, first, [model_for(t)])
    again = api.post_build([tiny(t)], toolchain=second)
    assert again.status_code == 202, again.text
    api.succeed(again.json()["id"], second, [model_for(t)])
    from nestml_registry.registry import characterisations

    for toolchain, verdict in ((first, "agrees"), (second, "differs")):
        with api.sessions.begin() as s:
            version = characterisations.version_row(s, f"tiny_{t}_neuron_nestml", 1)
            characterisations.queue_versions(s, [version.id], toolchain)
        claim = {"worker_id": "node:3:c", "toolchain": toolchain, "lease_seconds": 300}
        claimed = api.client.post(f"{W}/characterisations/claim", headers=auth(token), json=claim)
        assert claimed.status_code == 200, claimed.text
        done = api.client.post(f"{W}/characterisations/{claimed.json()['id']}/finish", headers=auth(token), json={
            "worker_id": "node:3:c", "seconds": 1.0,
            "result": {"status": "not_applicable", "reason": "no input", "check": _check(verdict)}})
        assert done.status_code == 204, done.text
    doc = api.client.get(f"/v1/models/tiny_{t}_neuron/versions/1/characterisation").json()
    assert [r["toolchain"] for r in doc["toolchains"]] == [first, second]
    assert doc["toolchain"] == second and doc["check"]["verdict"] == "differs"
    assert doc["changed"] == f"against toolchain {first}: against NEST agrees -> differs", doc["changed"]
    older = api.client.get(f"/v1/models/tiny_{t}_neuron/versions/1/characterisation", params={"toolchain": first})
    assert older.json()["check"]["verdict"] == "agrees" and older.json()["changed"] is None
    page = api.client.get(f"/models/tiny_{t}_neuron_nestml/1").text
    assert 'id="revalidation"' in page and 'id="toolchain-results"' in page and second in page
    health = api.client.get("/healthz").json()
    assert any("changed on a new toolchain" in p and f"tiny_{t}_neuron_nestml@1" in p for p in health["problems"])
    forged = api.client.post(f"{W}/characterisations/claim", headers=auth(token),
                             json={"worker_id": "node:3:c", "toolchain": first, "lease_seconds": 300})
    assert forged.status_code == 204, "nothing left to claim"


def test_a_new_toolchain_gets_the_librarys_builds(api: Api) -> None:
    """When a worker registers a toolchain the registry has not seen, the newest version of every model with a
    NEST counterpart is built for it again (its characterisation and check then run there); a model without a
    counterpart is not, and registering again queues nothing more."""
    first = api.register_toolchain()
    library_source = ("iaf_psc_exp_neuron.nestml",
                      TINY.replace("model tiny_neuron:", "model iaf_psc_exp_neuron:").encode())
    answer = api.post_build([library_source], toolchain=first)
    assert answer.status_code == 202, answer.text
    api.succeed(answer.json()["id"], first, [dict(model_for("x"), name="iaf_psc_exp_neuron_nestml",
                                                 nestml_name="iaf_psc_exp_neuron", source="iaf_psc_exp_neuron.nestml")])
    other_id, t = _queued(api, first)
    api.succeed(other_id, first, [model_for(t)])
    second = f"{TOOLCHAIN}-{tag()}"
    _, token = api.token("worker", f"node-{tag()}", [second])
    for _ in range(2):
        answer = api.client.post(f"{W}/register", headers=auth(token), json={"toolchain": toolchain_details(second)})
        assert answer.status_code == 204, answer.text
        builds = api.client.get("/v1/builds", params={"status": "queued"}).json()
        mine = [b for b in builds if b["toolchain"] == second]
        assert [b["sources"] for b in mine] == [["iaf_psc_exp_neuron.nestml"]], mine


# -- real worker processes ---------------------------------------------------------------------------------------

O1 = {"NESTML_REGISTRY_CXXFLAGS": "-O1"}


def _http_worker(server: Server, home: Path, token: str, **env: str) -> subprocess.Popen:
    """``nestml-registry worker --server URL`` with a home of its own and no database or store setting."""
    base = {k: v for k, v in server.env.items() if not k.startswith("NESTML_REGISTRY_")}
    base.update(NESTML_REGISTRY_HOME=str(home), NESTML_REGISTRY_TOKEN=token, NESTML_REGISTRY_POLL_SECONDS="0.3",
                **env)
    log = open(home.parent / f"{home.name}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([*CLI, "-v", "worker", "--server", server.url], env=base, cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT)


def _worker_token(server: Server, name: str, toolchains: tuple[str, ...] = ()) -> tuple[int, str]:
    """``token create --role worker [--toolchain ID]...``: the token's id and secret."""
    proc = server.cli("token", "create", "--role", "worker", "--name", name, "--json",
                      *[arg for tc in toolchains for arg in ("--toolchain", tc)])
    assert proc.returncode == 0, proc.stderr
    made = json.loads(proc.stdout)
    return made["id"], made["token"]


def _wait(what: str, check, timeout: float = 600):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory, registry_home: Path):  # type: ignore[no-untyped-def]
    """A registry with no compile worker of its own (``serve --workers 0``)."""
    srv = start_server(tmp_path_factory.mktemp("http-workers"), registry_home, workers=0, lease_seconds="6")
    yield srv
    srv.stop()


def _toolchains(server: Server) -> list[str]:
    return [t["id"] for t in httpx.get(f"{server.url}/v1/toolchains", timeout=10).json()]


@pytest.mark.slow
def test_an_http_worker_builds_for_its_toolchain_and_a_run_resolves_it(http_server: Server, tmp_path: Path) -> None:
    token_id, token = _worker_token(http_server, "cluster-node")
    home = tmp_path / "node-home"
    home.mkdir()
    # a token that may serve no toolchain yet: the worker's is recorded as waiting, and the worker stops
    refused = _http_worker(http_server, home, token, **O1)
    assert refused.wait(timeout=300) != 0
    said = (home.parent / f"{home.name}.log").read_text()
    assert "may not serve the toolchain" in said and "toolchain approve" in said and "Traceback" not in said, said
    waiting = [tc for tc in httpx.get(f"{http_server.url}/v1/toolchains").json() if not tc["approved"]]
    toolchain = waiting[0]["id"]
    approved = http_server.cli("toolchain", "approve", toolchain, "--token", str(token_id))
    assert approved.returncode == 0 and "approved the toolchain" in approved.stdout, approved.stderr
    worker = _http_worker(http_server, home, token, **O1)
    try:
        assert toolchain in _toolchains(http_server)
        assert "-O1" in json.dumps(httpx.get(f"{http_server.url}/v1/toolchains").json())
        pushed = http_server.cli("push", str(DATA / "custom_izh_neuron.nestml"), "--wait", "--json")
        assert pushed.returncode == 0, pushed.stderr
        assert json.loads(pushed.stdout)["status"] == "succeeded"
        net = build_izhikevich_network(tmp_path / "net", "nestml:custom_izh_neuron",
                                       {"a": 0.02, "b": 0.2, "c": -65.0, "d": 8.0})
        run = subprocess.run([*CLI, "run", str(net.config)], capture_output=True, text=True, timeout=600,
                             cwd=net.dir, env=client_env(http_server.env, OMP_NUM_THREADS="1", **O1))
        assert run.returncode == 0, run.stderr[-3000:]
        lock = json.loads((net.output_dir / "nestml-registry.lock.json").read_text())
        assert lock["toolchain"]["id"] == toolchain
        assert read_spikes(net.output_dir)
        assert not (home / "registry.db").exists() and not (home / "artifacts").exists()
        characterised = _wait("the characterisation", lambda: httpx.get(
            f"{http_server.url}/v1/models/custom_izh_neuron/versions/1/characterisation").json()["status"]
            in ("succeeded", "failed", "not_applicable"), timeout=300)
        assert characterised
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=300) == 0


@pytest.mark.slow
def test_an_http_worker_killed_mid_build_is_swept_and_another_finishes(http_server: Server, tmp_path: Path,
                                                                      toolchain) -> None:  # type: ignore[no-untyped-def]
    _, token = _worker_token(http_server, "cluster-pair", (toolchain.id,))
    workers = []
    for i in range(2):
        (tmp_path / f"w{i}").mkdir()
        workers.append(_http_worker(http_server, tmp_path / f"w{i}", token, NESTML_REGISTRY_LEASE_SECONDS="6"))
    try:
        t = tag()
        source = tmp_path / f"tiny_{t}.nestml"
        source.write_bytes(tiny(t)[1])
        _wait("both workers", lambda: sum(w["alive"] for w in httpx.get(f"{http_server.url}/v1/workers").json()
                                          if "cluster-pair/" in w["id"]) >= 2, timeout=300)
        pushed = http_server.cli("push", str(source), "--json")
        assert pushed.returncode == 0, pushed.stderr
        build_id = json.loads(pushed.stdout)["id"]
        holder = _wait("a worker holding the build", lambda: next(
            (w for w in httpx.get(f"{http_server.url}/v1/workers").json() if w.get("build") == build_id), None))
        pid = int(holder["id"].split("/", 1)[1].split(":")[1])
        victim = next(w for w in workers if w.pid == pid)
        os.kill(pid, signal.SIGKILL)
        victim.wait(timeout=60)
        done = _wait("the build", lambda: (b := httpx.get(f"{http_server.url}/v1/builds/{build_id}").json())
                     ["status"] in ("succeeded", "failed") and b, timeout=600)
        assert done["status"] == "succeeded", done
        assert done["attempts"] == 2
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
                w.wait(timeout=300)


@pytest.mark.parametrize("backend", backend_params())
def test_two_workers_must_agree_before_a_module_is_published(backend: str, tmp_path: Path) -> None:
    """NESTML_REGISTRY_AGREEMENT=2: the first report is kept and the build waits for a worker of another token;
    the same bytes publish, other bytes fail the build and publish nothing."""
    with running_api(backend, tmp_path, agreement=2) as api:
        toolchain = api.register_toolchain()
        _, first = api.token("worker", f"site-a-{tag()}", [toolchain])
        _, second = api.token("worker", f"site-b-{tag()}", [toolchain])
        _, third = api.token("worker", f"site-c-{tag()}", [toolchain])
        for other_bytes in (False, True):
            build_id, t = _queued(api, toolchain)
            content = f"\x7fELF module {t}".encode()
            claimed = _claim(api, first, toolchain, "a:1:x")
            module = claimed["request"]["module"]
            assert _report(api, first, build_id, "a:1:x", content, module, [model_for(t)])["status"] == "succeeded"
            waiting = api.client.get(f"/v1/builds/{build_id}").json()
            assert waiting["status"] == "queued" and "waiting for another worker" in waiting["stage"], waiting
            assert api.client.get(f"/v1/models/tiny_{t}_neuron_nestml").status_code == 404  # nothing published yet
            again = api.client.post(f"{W}/claim", headers=auth(first), json={
                "worker_id": "a:2:y", "toolchain": toolchain, "lease_seconds": 60})
            assert again.status_code == 204  # not for a worker of the token that built it already
            assert _claim(api, second, toolchain, "b:1:z")["id"] == build_id
            answer = _report(api, second, build_id, "b:1:z", content + (b"!" if other_bytes else b""), module,
                             [model_for(t)])
            build = api.client.get(f"/v1/builds/{build_id}").json()
            if other_bytes:
                assert answer["status"] == "failed" and "workers disagree" in answer["error"], answer
                assert build["status"] == "failed"
                assert api.client.get(f"/v1/models/tiny_{t}_neuron_nestml").status_code == 404
                # a retry starts afresh: the disagreeing reports are forgotten, the first token may build it
                retried = api.post_build([tiny(t)], toolchain=toolchain, retry=True)
                assert retried.status_code == 202 and retried.json()["id"] == build_id, retried.text
                assert _claim(api, first, toolchain, "a:3:w")["id"] == build_id
            else:
                assert answer["status"] == "succeeded" and build["status"] == "succeeded", (answer, build)
                assert build["module"]["sha256"] == sha256_of(content)
                assert api.client.get(f"/v1/models/tiny_{t}_neuron_nestml").status_code == 200
        assert third  # a third worker was never needed
