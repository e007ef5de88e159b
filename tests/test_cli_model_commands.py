"""``nestml-registry source`` and ``diff`` (and ``GET /v1/models/{name}/diff``) as a user runs them: the
CLI as a subprocess against a real server whose builds the API tests' stand-in worker finishes."""

from __future__ import annotations

import json
import os
import subprocess

from api_support import TINY, Api, api_fixture, assert_error_shape, model_for, tag
from server_fixtures import CLI, ROOT

api = api_fixture()


def cli(api: Api, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "NESTML_REGISTRY_TOKEN"}
    env["NESTML_REGISTRY_URL"] = api.url
    env["NESTML_REGISTRY_HOME"] = str(api.home)  # its local token, which the CLI finds by itself
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def two_versions(api: Api) -> tuple[str, str, str]:
    t, toolchain = tag(), api.register_toolchain()
    first = TINY.replace("model tiny_neuron:", f"model tiny_{t}_neuron:")
    second = (first.replace("tau_m ms = 10 ms ", "tau_m ms = 20 ms ")
              .replace("    output:", "    # a new comment\n    output:"))
    for text, tau in ((first, "10 ms"), (second, "20 ms")):
        build_id = api.post_build([(f"tiny_{t}.nestml", text.encode())], toolchain=toolchain).json()["id"]
        api.succeed(build_id, toolchain, [model_for(t, parameters=[
            {"name": "tau_m", "type": "ms", "default": tau, "comment": "membrane time constant", "value": 10.0}])])
    return f"tiny_{t}_neuron_nestml", first, second


def test_source_prints_the_published_text(api: Api) -> None:
    name, first, second = two_versions(api)
    assert cli(api, "source", name).stdout == second
    assert cli(api, "source", f"{name}@1").stdout == first
    doc = json.loads(cli(api, "source", f"{name}@1", "--json").stdout)
    assert doc["name"].endswith(".nestml") and doc["text"] == first
    missing = cli(api, "source", name + "x")
    assert missing.returncode == 2 and "did you mean" in missing.stderr


def test_a_publishers_terminal_escapes_are_shown_never_obeyed(api: Api) -> None:
    t, toolchain = tag(), api.register_toolchain()
    hostile = "\x1b]0;owned\x07\x1b[2J\u202e"
    text = (f"# {hostile}a model that clears the screen\n"
            + TINY.replace("model tiny_neuron:", f"model tiny_{t}_neuron:"))
    build_id = api.post_build([(f"tiny_{t}.nestml", text.encode())], toolchain=toolchain).json()["id"]
    api.succeed(build_id, toolchain, [model_for(t)])
    for args in (("show", f"tiny_{t}_neuron"), ("source", f"tiny_{t}_neuron"), ("models", "--search", t)):
        proc = cli(api, *args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert "\x1b" not in proc.stdout and "\u202e" not in proc.stdout and "\x07" not in proc.stdout, args
    assert "\\x1b]0;owned" in cli(api, "source", f"tiny_{t}_neuron").stdout  # shown, written out
    from nestml_registry.cli.console import visible

    assert visible("tab\tand\nnewline stay") == "tab\tand\nnewline stay"


def test_diff_shows_parameter_and_source_changes(api: Api) -> None:
    name, _, _ = two_versions(api)
    proc = cli(api, "diff", f"{name}@1", f"{name}@2")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"{name}: version 1 -> 2" in out and "state: no changes" in out
    assert [line.split() for line in out.splitlines() if line.strip().startswith("tau_m")] == \
        [["tau_m", "changed", "10", "ms", "20", "ms"]]
    assert "-        tau_m ms = 10 ms" in out and "+        tau_m ms = 20 ms" in out and "+    # a new comment" in out
    doc = api.client.get(f"/v1/models/{name}/diff", params={"from": 1, "to": 2}).json()
    assert doc["parameters"] == [{"name": "tau_m", "change": "changed", "before": "10 ms", "after": "20 ms",
                                  "unit_before": "ms", "unit_after": "ms"}]
    same = api.client.get(f"/v1/models/{name}/diff", params={"from": 2, "to": 2}).json()
    assert same["source_diff"] == "" and same["parameters"] == []
    error = assert_error_shape(api.client.get(f"/v1/models/{name}/diff", params={"from": 1, "to": 9}), 404)
    assert "has no version 9: it has versions 1, 2" in error["message"]


def test_diff_refuses_what_it_cannot_compare(api: Api) -> None:
    for args, message in ((["diff", "a_neuron", "a_neuron@2"], "name a version"),
                          (["diff", "a_neuron@1", "b_neuron@2"], "not versions of one model"),
                          (["diff", "a_neuron@0", "a_neuron@2"], "name a version")):
        proc = cli(api, *args)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_yank_skips_a_version_for_unpinned_references_only(api: Api) -> None:
    """As PyPI: a yanked version is never chosen for NAME, still resolved for NAME@VERSION (pinned or locked);
    only the name's owner (here: anonymous 'local', on loopback) or an admin may yank; unyank undoes it."""
    name, _, _ = two_versions(api)
    toolchain = api.client.get(f"/v1/models/{name}").json()["versions"][0]["modules"][0]["toolchain"]
    base = name.removesuffix("_nestml")
    newest = api.client.get("/v1/resolve", params={"model": name, "toolchain": toolchain})
    assert newest.status_code == 200 and newest.json()["version"] == 2
    proc = cli(api, "yank", f"{name}@2", "--reason", "tau_m is wrong; use version 1")
    assert proc.returncode == 0, proc.stderr
    assert "unpinned references skip it" in proc.stdout
    assert api.client.get("/v1/resolve", params={"model": base, "toolchain": toolchain}).json()["version"] == 1
    pinned = api.client.get("/v1/resolve", params={"model": f"{name}@2", "toolchain": toolchain}).json()
    assert pinned["version"] == 2 and pinned["yanked"] == "tau_m is wrong; use version 1"
    show = cli(api, "show", f"{name}@1")
    assert "(versions 1, 2 (yanked))" in show.stdout  # every version, also for NAME@VERSION
    assert "yanked by local: tau_m is wrong" in cli(api, "show", f"{name}@2").stdout
    pulled = cli(api, "pull", f"{name}@2", "--toolchain", toolchain)  # pinned: pulled, with run's warning
    assert pulled.returncode == 0 and f"{name}@2 is yanked: tau_m is wrong" in pulled.stderr, pulled.stderr
    detail = api.client.get(f"/v1/models/{name}@2").json()
    assert detail["versions"][0]["yanked"]["reason"] == "tau_m is wrong; use version 1"
    assert [v["version"] for v in detail["all_versions"]] == [2, 1]
    # the rules: a version is required, a reason too; someone else's name is refused
    assert "name a version" in cli(api, "yank", name, "--reason", "x").stderr
    error = assert_error_shape(api.client.post(f"/v1/models/{name}@2/yank", json={"reason": ""}), 422)
    assert "reason" in json.dumps(error)
    _, other = api.token("publisher", f"someone-{tag()}")
    refused = api.client.post(f"/v1/models/{name}@1/yank", json={"reason": "mine now"},
                              headers={"Authorization": f"Bearer {other}"})
    assert "belongs to 'local'" in assert_error_shape(refused, 403, "name_owned")["message"]
    _, admin = api.token("admin", f"admin-{tag()}")
    ok = api.client.post(f"/v1/models/{name}@1/yank", json={"reason": "an admin may"},
                         headers={"Authorization": f"Bearer {admin}"})
    assert ok.status_code == 200, ok.text
    every = assert_error_shape(api.client.get("/v1/resolve", params={"model": name, "toolchain": toolchain}), 404)
    assert "every version of" in every["message"] and f"pin one as {name}@VERSION" in every["message"]
    assert cli(api, "unyank", f"{name}@2").returncode == 0
    assert "(versions 1 (yanked), 2)" in cli(api, "show", name).stdout
    events = [e["action"] for e in api.client.get("/v1/audit", headers={"Authorization": f"Bearer {admin}"}).json()]
    assert {"yank", "unyank"} <= set(events)


def test_tokens_listed_and_revoked_over_the_api(api: Api) -> None:
    admin_id, admin = api.token("admin", f"admin-{tag()}")
    mine_id, mine = api.token("publisher", f"me-{tag()}")
    theirs_id, _ = api.token("reader", f"them-{tag()}")

    def as_(secret: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}"}

    listed = api.client.get("/v1/tokens", headers=as_(admin)).json()
    assert {mine_id, theirs_id, admin_id} <= {t["id"] for t in listed}
    assert all(set(t) == {"id", "name", "role", "created_at", "revoked_at"} for t in listed)  # never a secret
    assert_error_shape(api.client.get("/v1/tokens", headers=as_(mine)), 403)
    assert_error_shape(api.client.delete(f"/v1/tokens/{theirs_id}", headers=as_(mine)), 403)
    assert "token list" in assert_error_shape(api.client.delete("/v1/tokens/999999", headers=as_(admin)),
                                              404)["message"]
    env = {"NESTML_REGISTRY_TOKEN": admin}
    proc = subprocess.run([*CLI, "token", "list", "--server", api.url, "--json"], capture_output=True, text=True,
                          env={**os.environ, **env}, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert theirs_id in {t["id"] for t in json.loads(proc.stdout)}
    proc = subprocess.run([*CLI, "token", "revoke", str(theirs_id), "--server", api.url], capture_output=True,
                          text=True, env={**os.environ, **env}, cwd=ROOT, timeout=120)
    assert proc.returncode == 0 and f"revoked token {theirs_id}" in proc.stderr
    # a leaked token revokes itself; afterwards it is refused
    revoked = api.client.delete(f"/v1/tokens/{mine_id}", headers=as_(mine))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert_error_shape(api.client.get("/v1/models", headers=as_(mine)), 401)
    actions = [e["action"] for e in api.client.get("/v1/audit", headers=as_(admin)).json()]
    assert actions.count("token_revoke") >= 2


def test_describe_gives_a_version_its_metadata_in_one_line(api: Api) -> None:
    name, _, _ = two_versions(api)
    proc = cli(api, "describe", f"{name}@1", "--author", "Ann Author", "--license", "MIT", "--doi",
               "10.1152/jn.00686.2005", "--keyword", "rate model")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{name}@1: authors Ann Author; license MIT") and "rate model" in proc.stdout
    proc = cli(api, "describe", f"{name}@1", "--doi", "doi.org/10.1/x")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "a DOI is 10.NNNN/suffix" in proc.stderr
    assert "Traceback" not in proc.stderr
