"""A worker's characterisations: between builds, a worker claims a queued characterisation of a neuron
version whose module is built for its toolchain, runs the protocol in a sandboxed NEST process
(:class:`~nestml_registry.compiler.characteriser.Characteriser`) and records the result. A characterisation
that fails (the model's simulation raises, crashes or runs past its time limit) is recorded as failed;
the version and its module stay as they are.

A version whose NESTML model reimplements a NEST built-in (:mod:`nestml_registry.compiler.counterparts`)
is then checked against it, and the verdict is recorded with the characterisation (``result["check"]``);
a synapse version with a counterpart is only checked (:mod:`nestml_registry.compiler.synapse_check`).
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from pathlib import Path
from typing import Protocol

from nestml_registry.compiler.characteriser import Characteriser
from nestml_registry.compiler.checking import check_counterpart
from nestml_registry.compiler.comparison import membrane_of
from nestml_registry.compiler.counterparts import counterpart_of
from nestml_registry.compiler.pipeline import Compiler
from nestml_registry.compiler.synapse_check import check_synapse
from nestml_registry.registry import characterisations
from nestml_registry.registry.errors import RegistryError
from nestml_registry.service.settings import Settings
from nestml_registry.service.workers.queue_access import BEAT_EVERY, QueueAccess, QueueUnavailable

logger = logging.getLogger(__name__)


class Host(Protocol):
    """What characterising needs of its worker (:class:`~nestml_registry.service.workers.worker.Worker`)."""

    id: str
    settings: Settings
    compiler: Compiler
    access: QueueAccess

    def heartbeat(self) -> None: ...


class Characterising:
    def __init__(self, worker: Host) -> None:
        self.worker = worker
        self.timeout = worker.settings.characterise_timeout
        self.runner = Characteriser(worker.compiler, self.timeout)

    @property
    def lease_seconds(self) -> float:
        """Long enough for the whole run and its check: a characterisation renews no lease."""
        return max(self.worker.settings.lease_seconds, 2 * self.timeout + 60.0)

    def run_one(self, toolchain: str) -> bool:
        """Claim, run and record one characterisation; False when none waits for this toolchain."""
        w = self.worker
        claimed = w.access.claim_characterisation(w.id, toolchain, self.lease_seconds)
        if claimed is None:
            return False
        logger.info("worker %s characterising %s@%d", w.id, claimed.model, claimed.version)
        started = time.monotonic()
        beating = _Beating(w)  # the worker stays alive on /healthz however long the simulation takes
        beating.start()
        try:
            result = self.measure(claimed)
        finally:
            beating.stop()
        seconds = time.monotonic() - started
        try:
            w.access.finish_characterisation(claimed, w.id, result, seconds)
        except (QueueUnavailable, RegistryError) as exc:  # the sweep hands it out again
            logger.error("recording the characterisation of %s@%d failed: %s", claimed.model, claimed.version, exc)
        logger.info("%s@%d characterised in %.1f s: %s", claimed.model, claimed.version, seconds, result["status"])
        return True

    def measure(self, claimed: characterisations.Claimed) -> dict:
        work = self.worker.compiler.cache.work_dir
        work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="characterise-", dir=work) as tmp:
            try:
                module = self.worker.access.characterisation_module(claimed, self.worker.id, Path(tmp))
            except (RegistryError, OSError) as exc:
                return {"status": "failed", "error": f"its module cannot be read from the artifact store: {exc}"}
            try:
                return self.run(claimed, module, Path(tmp))
            except (OSError, ValueError) as exc:  # this machine's work folder, or a module name we refuse
                return {"status": "failed", "error": f"the worker could not run the characterisation: {exc}"}


    def run(self, claimed: characterisations.Claimed, module: Path, tmp: Path) -> dict:
        """A neuron's characterisation then its check, or a synapse's check alone."""
        version = {"parameters": claimed.parameters, "state": claimed.state}
        counterpart = counterpart_of(claimed.nestml_name, claimed.kind)
        if claimed.kind != "neuron":
            result: dict = {"status": "not_applicable", "reason": "a synapse model: only neuron models are "
                                                                  "characterised", "injection": None}
            if counterpart is not None:
                result["check"] = check_synapse(self.runner, module, claimed.model, version, counterpart)
            return result
        membrane = membrane_of(claimed.state) if claimed.state else "V_m"
        result = self.runner.characterise(module, claimed.model, tmp / "characterise.log", membrane)
        if counterpart is not None and result["status"] != "failed":
            result["check"] = check_counterpart(self.runner, module, claimed.model, version, counterpart)
        return result


class _Beating(threading.Thread):
    """The worker's heartbeat while it characterises (builds have theirs with the lease)."""

    def __init__(self, worker: Host) -> None:
        super().__init__(name="characterise-heartbeat", daemon=True)
        self.worker = worker
        self._done = threading.Event()

    def stop(self) -> None:
        self._done.set()
        self.join()

    def run(self) -> None:
        while not self._done.wait(BEAT_EVERY):
            try:
                self.worker.heartbeat()
            except QueueUnavailable as exc:  # the next beat tries again
                logger.warning("worker %s: heartbeat failed: %s", self.worker.id, exc)
