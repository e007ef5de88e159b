"""The build queue over HTTP, for a compile worker that reaches only the registry's API (``nestml-registry
worker --server URL`` with a worker token): the protocol of :mod:`nestml_registry.service.api.routes.worker_api`.
It has no database and no artifact store; the API sweeps expired leases.

A registry that does not answer (or answers 5xx, 429) raises
:class:`~nestml_registry.service.workers.queue_access.QueueUnavailable`, so the worker waits and tries again; a
lost lease (409) drops the work; anything else (a revoked token: 401/403) ends the worker with the
registry's message.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from nestml_registry.compiler.integrity import sha256_file
from nestml_registry.registry import characterisations, workers
from nestml_registry.service.client import RegistryClient, RegistryClientError
from nestml_registry.service.client.http_transport import Response
from nestml_registry.service.workers.queue_access import Claimed, Outcome, QueueUnavailable, refusal

logger = logging.getLogger(__name__)
BASE = "/v1/worker"


class HttpAccess:
    def __init__(self, server: str, token: str | None, timeout: float = 300.0) -> None:
        self.client = RegistryClient(server, token, timeout=timeout)
        self.server = server

    def describe(self) -> str:
        return f"the registry at {self.server} (HTTP)"

    def _call(self, method: str, path: str, *, lost_ok: bool = False, **kwargs: Any) -> Response | None:
        """The answer; None for a lost lease (409) when ``lost_ok``."""
        try:
            return self.client.call(method, BASE + path, **kwargs)
        except RegistryClientError as exc:
            if exc.status is None or exc.status >= 500 or exc.status == 429:
                raise QueueUnavailable(f"RegistryClientError: {exc.message}") from exc
            if lost_ok and exc.status == 409:
                logger.warning("%s", exc.message)
                return None
            raise

    def register(self, details: dict[str, Any]) -> None:
        self._call("POST", "/register", json={"toolchain": details})

    def beat(self, beat: workers.Beat) -> None:
        self._call("POST", "/beat", json=_beat(beat))

    def stopped(self, worker_id: str) -> None:
        self._call("POST", "/stopped", json={"worker_id": worker_id})

    def sweep(self) -> None:
        """The API's sweeper does it."""

    def pending(self, toolchain: str) -> bool:
        answer = self._call("GET", "/pending", params={"toolchain": toolchain})
        return bool(answer is not None and answer.json().get("pending"))

    def claim(self, worker_id: str, toolchain: str, lease_seconds: float) -> Claimed | None:
        answer = self._call("POST", "/claim", json={"worker_id": worker_id, "toolchain": toolchain,
                                                    "lease_seconds": lease_seconds})
        if answer is None or answer.status_code == 204:
            return None
        b = answer.json()
        return Claimed(int(b["id"]), str(b["key"]), dict(b["request"]),
                       [(str(s["name"]), str(s["sha256"]), str(s["text"])) for s in b["sources"]])

    def renew(self, build_id: int, worker_id: str, lease_seconds: float, stage: str | None,
              beat: workers.Beat) -> bool:
        return self._call("POST", f"/builds/{build_id}/renew", lost_ok=True, json={
            "worker_id": worker_id, "lease_seconds": lease_seconds, "stage": stage, "beat": _beat(beat)}) is not None

    def finish(self, claimed: Claimed, worker_id: str, outcome: Outcome) -> None:
        report: dict[str, Any] = {"worker_id": worker_id, "diagnostics": outcome.diagnostics, "log": outcome.log,
                                  "timings": outcome.timings}
        if outcome.module_path is not None:
            path, name = outcome.module_path, outcome.module_name or ""
            sha = sha256_file(path)
            try:
                with open(path, "rb") as fh:
                    uploaded = self._call("POST", f"/builds/{claimed.id}/module", lost_ok=True, content=fh,
                                          params={"worker_id": worker_id, "sha256": sha, "name": name},
                                          headers={"Content-Type": "application/octet-stream"})
            except RegistryClientError as exc:  # the registry refused the file (too large, damaged on the way)
                report["diagnostics"] = [*outcome.diagnostics, refusal(
                    f"the module built, but the registry refused it: {exc.message}")]
            else:
                if uploaded is None:
                    return  # the lease is lost: another worker builds it
                answer = self._call("POST", f"/builds/{claimed.id}/succeeded", lost_ok=True, json=dict(
                    report, sha256=sha, module_name=name, models=outcome.models or []))
                if answer is not None and answer.json().get("status") == "failed":
                    logger.warning("build %d failed: %s", claimed.id, answer.json().get("error"))
                return
        self._call("POST", f"/builds/{claimed.id}/failed", lost_ok=True, json=report)

    def claim_characterisation(self, worker_id: str, toolchain: str,
                               lease_seconds: float) -> characterisations.Claimed | None:
        answer = self._call("POST", "/characterisations/claim", json={
            "worker_id": worker_id, "toolchain": toolchain, "lease_seconds": lease_seconds})
        if answer is None or answer.status_code == 204:
            return None
        c = answer.json()
        return characterisations.Claimed(int(c["id"]), str(c["model"]), int(c["version"]), str(c["module_sha256"]),
                                         f"{c['module_name']}.so", c.get("nestml_name"),
                                         list(c.get("parameters") or []), list(c.get("state") or []),
                                         str(c.get("kind") or "neuron"))

    def characterisation_module(self, claimed: characterisations.Claimed, worker_id: str, folder: Path) -> Path:
        answer = self._call("GET", f"/characterisations/{claimed.id}/module", params={"worker_id": worker_id})
        if answer is None:
            raise OSError("the registry did not send the module")
        dest = folder / Path(claimed.module_location).name
        dest.write_bytes(answer.content)
        if sha256_file(dest) != claimed.module_sha256:
            raise OSError(f"the module the registry sent does not hash to {claimed.module_sha256}")
        return dest

    def finish_characterisation(self, claimed: characterisations.Claimed, worker_id: str, result: dict,
                                seconds: float) -> None:
        self._call("POST", f"/characterisations/{claimed.id}/finish", lost_ok=True,
                   json={"worker_id": worker_id, "result": result, "seconds": seconds})

    def clean_store(self) -> int:
        return 0

    def close(self) -> None:
        self.client.close()


def _beat(b: workers.Beat) -> dict[str, Any]:
    return {"worker_id": b.worker_id, "toolchain": b.toolchain, "host": b.host, "pid": b.pid,
            "alive_for": b.alive_for, "build_id": b.build_id, "builds": b.builds, "retries": b.retries,
            "last_error": b.last_error, "sent_at": b.sent_at.isoformat() if b.sent_at else None}
