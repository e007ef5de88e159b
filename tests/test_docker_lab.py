"""The lab deployment in Docker, as ``scripts/docker-test.sh`` runs it after building the image: ``db upgrade``,
the API and two compile workers as containers (host networking: all traffic on 127.0.0.1) against this
machine's PostgreSQL on a fresh database, one shared artifact volume. From the host: push a model over
HTTP, pull it, load it in NEST and simulate; the build steps were sandboxed inside the container; SIGKILL
of a worker container mid-build, and the other finishes the build; the whole stack stopped and started
with nothing lost.

Runs only with ``NESTML_REGISTRY_DOCKER_TEST=1`` and the image ``nestml-registry:latest`` (the script
builds it); the rest of the suite skips it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import run_nest_script
from registry_fixtures import create_database, drop_database
from server_fixtures import CLI, ROOT, free_port

pytestmark = pytest.mark.skipif(
    os.environ.get("NESTML_REGISTRY_DOCKER_TEST") != "1",
    reason="the Docker lab runs from scripts/docker-test.sh (NESTML_REGISTRY_DOCKER_TEST=1)")
IMAGE = os.environ.get("NESTML_REGISTRY_IMAGE", "nestml-registry:latest")
# what bubblewrap needs of the container runtime (see docs/explanations/security.md)
SANDBOX = ["--security-opt", "seccomp=unconfined", "--security-opt", "systempaths=unconfined"]
DATA = Path(__file__).parent / "data"
SIMULATE = """
import sys
import nest
nest.set_verbosity("M_ERROR")
nest.Install(sys.argv[1])
neuron = nest.Create(sys.argv[2], params={"I_e": 10.0})
recorder = nest.Create("spike_recorder")
nest.Connect(neuron, recorder)
nest.Simulate(200.0)
print("spikes", recorder.n_events)
"""


def docker(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, (args, proc.stdout[-2000:], proc.stderr[-2000:])
    return proc


@dataclass
class Lab:
    tag: str
    url: str
    database_url: str
    volume: str
    env: dict[str, str]

    def name(self, role: str) -> str:
        return f"nestml-lab-{role}-{self.tag}"

    def start(self, role: str, *command: str, sandboxed: bool = False, **env: str) -> None:
        settings = {"NESTML_REGISTRY_DATABASE_URL": self.database_url, "NESTML_REGISTRY_LEASE_SECONDS": "10",
                    "NESTML_REGISTRY_POLL_SECONDS": "0.5", **env}
        flags = [f"--env={k}={v}" for k, v in settings.items()]
        docker("run", "-d", "--name", self.name(role), "--network", "host", *(SANDBOX if sandboxed else []),
               "-v", f"{self.volume}:/data/artifacts", *flags, IMAGE, *command)

    def cli(self, *args: str, timeout: float = 900, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                              env={**self.env, **env})

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30)

    def logs(self, role: str) -> str:
        proc = docker("logs", "--tail", "60", self.name(role), check=False)
        return proc.stdout + proc.stderr


def wait(what: str, check, timeout: float = 600):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("docker-lab")
    tag = uuid.uuid4().hex[:8]
    database_url = create_database("postgresql", tmp)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NESTML_REGISTRY_")}
    env.update(NESTML_REGISTRY_URL=url, NESTML_REGISTRY_HOME=str(tmp / "host-home"),
               NESTML_REGISTRY_MODULE_CACHE=str(tmp / "host-modules"))
    lab = Lab(tag, url, database_url, f"nestml-lab-artifacts-{tag}", env)
    docker("volume", "create", lab.volume)
    try:
        docker("run", "--rm", "--network", "host", f"--env=NESTML_REGISTRY_DATABASE_URL={database_url}", IMAGE,
               "db", "upgrade")
        # the host is another machine to the API's container: its user publishes with a token of their own
        made = docker("run", "--rm", "--network", "host", f"--env=NESTML_REGISTRY_DATABASE_URL={database_url}",
                      IMAGE, "token", "create", "--role", "publisher", "--name", "lab-host")
        lab.env["NESTML_REGISTRY_TOKEN"] = made.stdout.strip().splitlines()[-1]
        lab.start("api", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "0")
        for i in (1, 2):
            lab.start(f"worker{i}", "worker", sandboxed=True)
        wait("the API and a worker", lambda: lab.get("/healthz").status_code == 200
             and lab.get("/v1/toolchains").json(), timeout=300)
        yield lab
    finally:
        for role in ("api", "worker1", "worker2"):
            docker("rm", "-f", lab.name(role), check=False)
        docker("volume", "rm", "-f", lab.volume, check=False)
        drop_database(database_url)


@pytest.fixture(scope="module")
def pushed(lab: Lab) -> dict:
    proc = lab.cli("push", str(DATA / "custom_izh_neuron.nestml"), "--wait", "--json")
    assert proc.returncode == 0, (proc.stderr[-3000:], lab.logs("worker1"), lab.logs("worker2"))
    build = json.loads(proc.stdout)
    assert build["status"] == "succeeded", build
    return build


def pulled_and_simulated(pull: subprocess.CompletedProcess, pushed: dict) -> None:
    """``pull custom_izh_neuron --json`` got the pushed module, and NEST on this host simulates it."""
    assert pull.returncode == 0, pull.stderr
    pulled = json.loads(pull.stdout)
    assert pulled["sha256"] == pushed["module"]["sha256"]
    out = run_nest_script(SIMULATE, str(Path(pulled["path"]).with_suffix("")), "custom_izh_neuron_nestml")
    assert int(out.split("spikes")[-1]) > 0, out


def test_a_model_pushed_from_the_host_is_pulled_and_simulated(lab: Lab, pushed: dict) -> None:
    pulled_and_simulated(lab.cli("pull", "custom_izh_neuron", "--json"), pushed)


def test_build_steps_are_sandboxed_inside_the_container(lab: Lab, pushed: dict) -> None:
    toolchains = lab.get("/v1/toolchains").json()
    assert toolchains and all(t["details"].get("sandboxed") is True for t in toolchains), toolchains
    log = lab.get(f"/v1/builds/{pushed['id']}/log").text
    assert "sandbox bubblewrap" in log, log[:500]


def test_a_worker_container_killed_mid_build_is_swept_and_the_other_finishes(lab: Lab, pushed: dict,
                                                                             tmp_path: Path) -> None:
    docker("stop", lab.name("worker2"))
    text = (DATA / "custom_izh_neuron.nestml").read_text().replace("model custom_izh_neuron:",
                                                                   "model killed_izh_neuron:")
    source = tmp_path / "killed_izh_neuron.nestml"
    source.write_text(text)
    proc = lab.cli("push", str(source), "--json")
    assert proc.returncode == 0, proc.stderr
    build_id = json.loads(proc.stdout)["id"]
    wait("worker1 to start the build", lambda: lab.get(f"/v1/builds/{build_id}").json()["status"] == "running")
    docker("kill", "--signal", "KILL", lab.name("worker1"))
    docker("start", lab.name("worker2"))
    done = wait("the build", lambda: (b := lab.get(f"/v1/builds/{build_id}").json())["status"]
                in ("succeeded", "failed") and b)
    assert done["status"] == "succeeded" and done["attempts"] == 2, (done, lab.logs("worker2"))
    docker("start", lab.name("worker1"))


def test_the_stack_stopped_and_started_loses_nothing(lab: Lab, pushed: dict) -> None:
    before = {m["name"] for m in lab.get("/v1/models").json()}
    builds = len(lab.get("/v1/builds").json())
    for role in ("worker1", "worker2", "api"):
        docker("stop", lab.name(role))
    for role in ("api", "worker1", "worker2"):
        docker("start", lab.name(role))
    wait("the API again", lambda: lab.get("/healthz").status_code == 200, timeout=300)
    assert {m["name"] for m in lab.get("/v1/models").json()} == before
    assert len(lab.get("/v1/builds").json()) == builds
    fresh = lab.cli("pull", "custom_izh_neuron", "--json", NESTML_REGISTRY_MODULE_CACHE=str(Path(lab.env[
        "NESTML_REGISTRY_MODULE_CACHE"]).with_name("again")))
    assert fresh.returncode == 0 and json.loads(fresh.stdout)["sha256"] == pushed["module"]["sha256"], fresh.stderr
