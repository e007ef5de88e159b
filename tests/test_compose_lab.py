"""The lab deployment exactly as docs/guides/lab-admin.md writes it: ``docker/compose.yaml`` brought up with the compose
tool this machine has (Debian's ``docker-compose`` 1.29, else ``docker compose``), on the project's offline
images (``scripts/docker-test.sh`` builds the registry's, and PostgreSQL's from ``docker/postgres``), with
host networking (everything on 127.0.0.1). ``up``; ``exec api nestml-registry token create``; from the
host a push, a pull and a simulation; ``down`` and ``up`` again with nothing lost; ``down -v`` leaves no
container and no volume.

Runs only with ``NESTML_REGISTRY_DOCKER_TEST=1``; the rest of the suite skips it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from server_fixtures import CLI, ROOT, free_port
from test_docker_lab import DATA, IMAGE, docker, pulled_and_simulated, wait

pytestmark = pytest.mark.skipif(
    os.environ.get("NESTML_REGISTRY_DOCKER_TEST") != "1",
    reason="the Docker lab runs from scripts/docker-test.sh (NESTML_REGISTRY_DOCKER_TEST=1)")
POSTGRES_IMAGE = os.environ.get("NESTML_REGISTRY_POSTGRES_IMAGE", "nestml-registry-postgres:15")
COMPOSE_FILE = ROOT / "docker" / "compose.yaml"


def compose_tool() -> list[str]:
    """Debian's docker-compose where installed (what the guide gives Debian), else Docker's plugin."""
    return ["docker-compose"] if shutil.which("docker-compose") else ["docker", "compose"]


@dataclass
class Deployment:
    project: str
    env_file: Path
    url: str
    host_env: dict[str, str]  # the host's CLI: another machine to the deployment

    def compose(self, *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
        proc = subprocess.run([*compose_tool(), "-p", self.project, "--env-file", str(self.env_file),
                               "-f", str(COMPOSE_FILE), *args], capture_output=True, text=True, timeout=timeout)
        if check:
            assert proc.returncode == 0, (args, proc.stdout[-3000:], proc.stderr[-3000:])
        return proc

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=900, cwd=ROOT,
                              env={**self.host_env, **env})

    def up(self) -> None:
        self.compose("up", "-d", "--no-build")
        wait("the API and both workers", lambda: httpx.get(self.url + "/healthz", timeout=10).status_code == 200
             and httpx.get(self.url + "/v1/toolchains", timeout=10).json(), timeout=300)

    def logs(self) -> str:
        return self.compose("logs", "--tail", "40", check=False).stdout[-6000:]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("compose-lab")
    tag = uuid.uuid4().hex[:8]
    image = f"nestml-registry-lab-{tag}"  # a name of its own: no other deployment's image is touched
    port = free_port()
    env_file = tmp / "lab.env"
    env_file.write_text(f"POSTGRES_PASSWORD={secrets.token_hex(16)}\nREGISTRY_PORT={port}\nREGISTRY_HOST=127.0.0.1\n"
                        f"DB_PORT={free_port()}\nREGISTRY_IMAGE={image}\nREGISTRY_TAG=test\n"
                        f"POSTGRES_IMAGE={POSTGRES_IMAGE}\n")
    host_env = {k: v for k, v in os.environ.items() if not k.startswith("NESTML_REGISTRY_")}
    host_env.update(NESTML_REGISTRY_URL=f"http://127.0.0.1:{port}", NESTML_REGISTRY_HOME=str(tmp / "host-home"),
                    NESTML_REGISTRY_MODULE_CACHE=str(tmp / "host-modules"))
    lab = Deployment(f"nrlab{tag}", env_file, f"http://127.0.0.1:{port}", host_env)
    docker("tag", IMAGE, f"{image}:test")
    try:
        lab.up()
        yield lab
    finally:
        lab.compose("down", "-v", check=False)
        docker("rmi", f"{image}:test", check=False)


@pytest.fixture(scope="module")
def pushed(deployment: Deployment) -> dict:
    made = deployment.compose("exec", "-T", "api", "nestml-registry", "token", "create", "--role", "publisher",
                              "--name", "lab-host")
    deployment.host_env["NESTML_REGISTRY_TOKEN"] = made.stdout.strip().splitlines()[-1]
    proc = deployment.cli("push", str(DATA / "custom_izh_neuron.nestml"), "--wait", "--json")
    assert proc.returncode == 0, (proc.stderr[-3000:], deployment.logs())
    build = json.loads(proc.stdout)
    assert build["status"] == "succeeded", build
    return build


def test_the_deployment_runs_two_workers_on_the_offline_images(deployment: Deployment) -> None:
    workers = deployment.compose("ps", "-q", "worker").stdout.split()
    assert len(workers) == 2, deployment.compose("ps").stdout
    images = {docker("inspect", "--format", "{{.Config.Image}}", c).stdout.strip()
              for c in deployment.compose("ps", "-q").stdout.split()}
    assert POSTGRES_IMAGE in images and all(i == POSTGRES_IMAGE or i.endswith(":test") for i in images), images
    health = httpx.get(deployment.url + "/healthz", timeout=10).json()
    assert health["database"] == "ok" and health["sandbox"] == "on", health


def test_a_model_pushed_from_the_host_is_pulled_and_simulated(deployment: Deployment, pushed: dict) -> None:
    pulled_and_simulated(deployment.cli("pull", "custom_izh_neuron", "--json"), pushed)


def test_down_and_up_again_loses_nothing_and_down_v_leaves_nothing(deployment: Deployment, pushed: dict) -> None:
    models = httpx.get(deployment.url + "/v1/models", timeout=10).json()
    deployment.compose("down")
    deployment.up()
    assert httpx.get(deployment.url + "/v1/models", timeout=10).json() == models
    again = deployment.cli("pull", "custom_izh_neuron", "--json",
                           NESTML_REGISTRY_MODULE_CACHE=deployment.host_env["NESTML_REGISTRY_MODULE_CACHE"] + "-again")
    assert again.returncode == 0 and json.loads(again.stdout)["sha256"] == pushed["module"]["sha256"], again.stderr
    deployment.compose("down", "-v")
    assert not deployment.compose("ps", "-q").stdout.split()
    volumes = docker("volume", "ls", "-q", "--filter", f"name={deployment.project}").stdout.split()
    assert volumes == [], volumes
