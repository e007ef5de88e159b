"""The registry's HTTP client, used by the CLI and by the simulator.

    client = RegistryClient.from_env()            # NESTML_REGISTRY_URL, NESTML_REGISTRY_TOKEN
    build = client.submit_build(["izh.nestml"])
    build = client.wait_build(build["id"], on_progress=print)
    found = client.resolve("izh_neuron", toolchain_id)
    path = client.download(found["module"]["sha256"], "/some/dir", f"{found['module']['name']}.so")

Every failure is a :class:`RegistryClientError` whose message says what is wrong and what to do: the
server's own ``{"error": {"code", "message", "details"}}`` answer, or a registry that did not answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from nestml_registry.compiler.integrity import is_file_name
from nestml_registry.service.client.errors import FINAL_STATUSES, RegistryClientError
from nestml_registry.service.client.http_transport import Response, Transport, TransportError
from nestml_registry.service.client.messages import (
    TOKEN_ENV,
    URL_ENV,
    FileArg,
    check_filename,
    check_sha256,
    error_from_response,
    file_part,
    pair_dict,
)
from nestml_registry.service.client.retries import RetryPolicy, retryable

logger = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 60.0
CHUNK = 1024 * 1024
_DISPOSITION_RE = re.compile(r'filename="?([^";]+)"?')

T = TypeVar("T")


class RegistryClient:
    """A synchronous client of one registry server: the HTTP API under ``/v1`` (docs/reference/http.md;
    ``/openapi.json`` describes every operation). Errors are :class:`RegistryClientError`."""

    def __init__(self, base_url: str = DEFAULT_URL, token: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 retry: RetryPolicy | None = None) -> None:
        base_url = (base_url or DEFAULT_URL).strip().rstrip("/")
        if not re.match(r"^https?://[^/\s]+", base_url):
            raise RegistryClientError(
                f"invalid registry URL {base_url!r}: give one such as http://registry.lab:8000 "
                f"(--server or {URL_ENV})", code="invalid_url")
        self.base_url = base_url
        token = (token or "").strip()
        if token and not (token.isascii() and token.isprintable()):
            raise RegistryClientError("the registry token holds a line break, a control or a non-ASCII character: "
                                      "check NESTML_REGISTRY_TOKEN (or the token given)", code="invalid_token")
        self.token = token or None
        self.timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy.from_env()
        self._answered = False  # whether this server has answered this client yet
        self._client: Transport | None = None  # made at the first request (a locked run may need none)
        self._toolchain: str | None = None

    @property
    def _http(self) -> Transport:
        if self._client is None:
            headers = {"User-Agent": "nestml-registry-client", "Accept": "application/json"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            self._client = Transport(self.base_url, headers, self.timeout)
        return self._client

    @classmethod
    def from_env(cls, server: str | None = None, token: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 env: Mapping[str, str] | None = None) -> RegistryClient:
        """The client for ``server`` (else ``$NESTML_REGISTRY_URL``, else http://127.0.0.1:8000) with
        ``token`` (else ``$NESTML_REGISTRY_TOKEN``, else, for a server on this machine, the local token that
        its ``serve`` wrote for this user: :mod:`nestml_registry.service.client.local_token`)."""
        from nestml_registry.service.client import local_token

        env = os.environ if env is None else env
        url = server or env.get(URL_ENV) or DEFAULT_URL
        return cls(url, token or env.get(TOKEN_ENV) or local_token.for_client(url, env) or None, timeout)

    def __repr__(self) -> str:
        return f"RegistryClient({self.base_url!r}, token={'set' if self.token else None})"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------------

    def _unreachable(self, exc: TransportError) -> RegistryClientError:
        if type(exc.__cause__).__name__ == "SSLCertVerificationError":
            return RegistryClientError(
                f"the registry at {self.base_url} presents a TLS certificate this machine does not trust "
                f"({exc.__cause__}): set SSL_CERT_FILE to the file of the certificate authority that signed it "
                "(the lab's CA), or ask the registry's administrator for it", None, "untrusted_certificate",
                {"url": self.base_url})
        if exc.kind == "timeout" or (exc.kind == "connect" and isinstance(exc.__cause__, TimeoutError)):
            what = f"did not answer within {self.timeout:g} s"
        else:
            what = f"did not answer ({exc})"
        error = RegistryClientError(
            f"the registry at {self.base_url} {what}: check {URL_ENV} (or --server) and that "
            "'nestml-registry serve' runs there", None, "unreachable", {"url": self.base_url})
        # a refused connect to a server this client never reached is a wrong URL or a stopped server: say so
        # at once; once it has answered, a refused or cut connection is a restart or overload that passes
        error.transient = exc.kind == "cut" or (exc.kind == "connect" and self._answered)
        return error

    def _retrying(self, method: str, send: Callable[[], T]) -> T:
        """``send()``, tried again while it fails in a way that may pass
        (:mod:`nestml_registry.service.client.retries`)."""
        started, attempt = time.monotonic(), 0
        while True:
            try:
                return send()
            except RegistryClientError as exc:
                if not retryable(method, exc.status, exc.code) or (exc.status is None and not exc.transient):
                    raise
                delay = self.retry.delay(attempt, time.monotonic() - started, exc.retry_after)
                if delay is None:
                    raise
                logger.info("%s (%s); trying again in %.1f s", exc.code or exc.status, exc.message[:120], delay)
                time.sleep(delay)
                attempt += 1

    def _request(self, method: str, path: str, **kwargs: Any) -> Response:
        def send() -> Response:
            try:
                response = self._http.request(method, path, **kwargs)
            except TransportError as exc:
                raise self._unreachable(exc) from exc
            self._answered = True
            if response.status_code >= 300:
                raise error_from_response(response)
            return response

        return self._retrying(method, send)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise RegistryClientError(
                f"the registry at {self.base_url} answered {method} {path} with something that is not JSON: "
                "is this URL a nestml-registry server?", response.status_code, "bad_response") from exc

    def call(self, method: str, path: str, **kwargs: Any) -> Response:
        """Any API request (for the registry's own parts, such as the HTTP worker): errors raised as
        :class:`RegistryClientError`, idempotent requests retried as every call is."""
        return self._request(method, path, **kwargs)

    # -- builds ------------------------------------------------------------------------------------

    def submit_build(self, files: Iterable[FileArg], module: str | None = None, pairs: Sequence[Any] = (),
                     suffix: str | None = None, weight_variables: Mapping[str, str] | None = None,
                     delay_variables: Mapping[str, str] | None = None,
                     toolchain: str | None = None, retry: bool = False, breaking: bool = False) -> dict[str, Any]:
        """Upload sources (paths, or ``(name, bytes)``) and queue their build; returns the build document.

        An identical request gets the same build (``retry=True`` queues a failed one again). ``breaking``
        allows new versions that drop parameters, state variables or input ports of the version before."""
        parts = [file_part(f) for f in files]
        if not parts:
            raise RegistryClientError("no sources: give at least one .nestml file", code="invalid_input")
        data: dict[str, str] = {}
        if module:
            data["module"] = module
        if pairs:
            data["pairs"] = json.dumps([pair_dict(p) for p in pairs])
        if suffix is not None:
            data["suffix"] = suffix
        if weight_variables:
            data["weight_variables"] = json.dumps(dict(weight_variables))
        if delay_variables:
            data["delay_variables"] = json.dumps(dict(delay_variables))
        if toolchain:
            data["toolchain"] = toolchain
        if retry:
            data["retry"] = "true"
        if breaking:
            data["breaking"] = "true"
        upload = [("files", (name, content, "text/plain")) for name, content in parts]
        build = self._json("POST", "/v1/builds", data=data, files=upload)
        logger.info("build %s is %s", build.get("id"), build.get("status"))
        return build

    def audit(self, limit: int = 50, action: str | None = None) -> list[dict[str, Any]]:
        """The audit log, newest first (needs an admin token)."""
        params: dict[str, Any] = {"limit": limit}
        if action:
            params["action"] = action
        return self._json("GET", "/v1/audit", params=params)

    def rebuild(self, model: str, toolchain: str | None = None, retry: bool = False) -> dict[str, Any]:
        """Queue the build of a published model (``NAME[@VERSION]``) for ``toolchain`` from the sources
        that published it; returns the build document (already succeeded when there is one)."""
        body: dict[str, Any] = {"retry": retry}
        if toolchain:
            body["toolchain"] = toolchain
        return self._json("POST", f"/v1/models/{model}/builds", json=body)

    def get_build(self, build_id: int | str) -> dict[str, Any]:
        return self._json("GET", f"/v1/builds/{build_id}")

    def build_log(self, build_id: int | str) -> str:
        return self._request("GET", f"/v1/builds/{build_id}/log", headers={"Accept": "text/plain"}).text

    def wait_build(self, build_id: int | str, on_progress: Callable[[dict[str, Any]], None] | None = None,
                   poll: float = 0.5, timeout: float | None = None) -> dict[str, Any]:
        """Poll the build until it succeeded or failed; ``on_progress(build)`` sees every answer.

        Raises a RegistryClientError (code ``timeout``) after ``timeout`` seconds; the build goes on."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            build = self.get_build(build_id)
            if on_progress is not None:
                on_progress(build)
            if build.get("status") in FINAL_STATUSES:
                return build
            if deadline is not None and time.monotonic() >= deadline:
                raise RegistryClientError(
                    f"build {build_id} is still {build.get('status')} ({build.get('stage') or 'no stage'}) after "
                    f"{timeout:g} s; it goes on on the server: look again later (GET /v1/builds/{build_id})",
                    None, "timeout", {"build": build})
            time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))

    # -- models, modules, resolution ---------------------------------------------------------------

    def models(self, search: str = "", kind: str | None = None, owner: str | None = None,
               verdict: str | None = None) -> list[dict[str, Any]]:
        """Every model with its newest version, the most recently published first; ``search`` (words that
        must all appear in a model's name, description, parameter or state names), ``kind``, ``owner`` and
        ``verdict`` (against its NEST counterpart: agrees, differs, failed, none) narrow the list."""
        params = {k: v for k, v in (("q", search), ("kind", kind), ("owner", owner), ("verdict", verdict)) if v}
        answer = self._json("GET", "/v1/models", params=params)
        if isinstance(answer, dict) and "models" in answer:
            return list(answer["models"])
        return list(answer)

    def model_diff(self, name: str, older: int, newer: int) -> dict[str, Any]:
        """What changed from version ``older`` to ``newer`` of model ``name``: parameters, state, source."""
        return dict(self._json("GET", f"/v1/models/{quote(name, safe='')}/diff", params={"from": older, "to": newer}))

    def yank(self, reference: str, reason: str) -> dict[str, Any]:
        """Withdraw ``NAME@VERSION`` (its owner or an admin): unpinned references skip it from now on."""
        return dict(self._json("POST", f"/v1/models/{quote(reference, safe='')}/yank", json={"reason": reason}))

    def unyank(self, reference: str) -> dict[str, Any]:
        return dict(self._json("POST", f"/v1/models/{quote(reference, safe='')}/unyank"))

    def describe(self, reference: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """Give ``NAME@VERSION`` its metadata (authors, license, references, dois, keywords; its owner or an
        admin): it replaces what was given before. Returns the model document."""
        return dict(self._json("POST", f"/v1/models/{quote(reference, safe='')}/metadata", json=dict(metadata)))

    def characterisation(self, name: str, version: int) -> dict[str, Any]:
        """How ``name@version`` behaves in NEST (rheobase, f-I curve, traces), or its status until measured."""
        return dict(self._json("GET", f"/v1/models/{quote(name, safe='')}/versions/{int(version)}/characterisation"))

    def characterise(self, model: str | None = None, all_versions: bool = False) -> list[dict[str, Any]]:
        """Queue characterisations again: of ``model`` (NAME or NAME@VERSION) or of every version you own."""
        body = {"model": model} if model is not None else {"all": bool(all_versions)}
        return list(self._json("POST", "/v1/characterisations", json=body))

    def tokens(self) -> list[dict[str, Any]]:
        """The registry's API tokens, never their secrets (an admin token)."""
        return list(self._json("GET", "/v1/tokens"))

    def revoke_token(self, token_id: int) -> dict[str, Any]:
        """Revoke a token at once (an admin token, or the token itself)."""
        return dict(self._json("DELETE", f"/v1/tokens/{int(token_id)}"))

    def builds(self, status: str | None = None, submitter: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Recent builds, newest first (``status``, ``submitter``: a principal's name, ``local`` for anonymous)."""
        params: dict[str, Any] = {k: v for k, v in (("status", status), ("submitter", submitter)) if v}
        return list(self._json("GET", "/v1/builds", params={**params, "limit": limit}))

    def model(self, name: str) -> dict[str, Any]:
        """A model (``name``, ``name_nestml`` or ``name@version``): versions, parameters, state, ports."""
        return self._json("GET", f"/v1/models/{name}")

    def module(self, sha256: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/modules/{check_sha256(sha256)}")

    def toolchain(self) -> str:
        """This machine's toolchain id (its NEST, C++ ABI, compiler, platform and NESTML), detected as
        ``nestml-registry run`` detects it (in a child process that imports NEST, once; then cached)."""
        if self._toolchain is None:
            from nestml_registry.compiler.errors import CompilerError
            from nestml_registry.compiler.toolchain import detect
            from nestml_registry.service.settings import Settings

            settings = Settings.from_env()
            try:
                self._toolchain = detect(settings.cache_dir, cxxflags=settings.cxxflags).id
            except CompilerError as exc:
                raise RegistryClientError(f"cannot tell this machine's NEST toolchain: {exc}; give the toolchain "
                                          "id (GET /v1/toolchains lists the registry's)", code="toolchain") from exc
        return self._toolchain

    def resolve(self, model: str, toolchain: str | None = None) -> dict[str, Any]:
        """The module to load for ``model`` (``NAME[@VERSION]``) on ``toolchain`` (this machine's by
        default, :meth:`toolchain`): ``{"model", "version", "kind", "module": {"name", "sha256", "url"},
        "toolchain"}``."""
        return self._json("GET", "/v1/resolve", params={"model": model, "toolchain": toolchain or self.toolchain()})

    def resolve_many(self, models: Sequence[str], toolchain: str | None = None) -> list[dict[str, Any]]:
        """Resolve several references for one NEST process (results in the same order; this machine's
        toolchain by default). The registry refuses (409) two versions of one model and modules that
        register the same name."""
        if not models:
            return []
        params = [("model", m) for m in models] + [("toolchain", toolchain or self.toolchain())]
        answer = self._json("GET", "/v1/resolve", params=params)
        if isinstance(answer, dict) and "resolutions" in answer:
            return list(answer["resolutions"])
        return [answer]

    def toolchains(self) -> list[dict[str, Any]]:
        """The toolchains the registry's compile workers serve, the most recently seen first."""
        return list(self._json("GET", "/v1/toolchains"))

    # -- artifacts ---------------------------------------------------------------------------------

    def download(self, sha256: str, dest_dir: str | os.PathLike, filename: str | None = None) -> Path:
        """Download module ``sha256`` into ``dest_dir`` and return its path.

        The bytes stream into a temporary file in ``dest_dir`` while being hashed; only a file whose
        sha256 matches is renamed to ``dest_dir/filename`` (default: the server's file name). On any
        error nothing is left behind."""
        check_sha256(sha256)
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        return self._retrying("GET", lambda: self._download_once(sha256, dest, filename))

    def _download_once(self, sha256: str, dest: Path, filename: str | None) -> Path:
        tmp = dest / f".{uuid.uuid4().hex}.{os.getpid()}.part"
        path = f"/v1/modules/{sha256}/artifact"
        try:
            with self._http.request("GET", path, headers={"Accept": "application/octet-stream"},
                                    stream=True) as response:
                self._answered = True
                if response.status_code >= 400:
                    response.read()
                    raise error_from_response(response)
                announced = response.headers.get("x-content-sha256")
                if announced and announced.lower() != sha256:
                    raise RegistryClientError(
                        f"the registry answered the request for module {sha256} with a file it says is "
                        f"{announced}: the server is inconsistent; tell its administrator", response.status_code,
                        "checksum_mismatch", {"expected": sha256, "announced": announced})
                name = check_filename(filename or self._served_name(response, sha256))
                digest, size = hashlib.sha256(), 0
                with open(tmp, "xb") as out:
                    for chunk in response.iter_bytes(CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
            actual = digest.hexdigest()
            if actual != sha256:
                raise RegistryClientError(
                    f"module {sha256} arrived damaged from {self.base_url}: its {size} bytes hash to {actual}; "
                    "nothing was kept. Try again; if it happens again, the registry's copy is corrupt (tell its "
                    "administrator)", None, "checksum_mismatch", {"expected": sha256, "actual": actual, "size": size})
            os.chmod(tmp, 0o644)
            final = dest / name
            os.replace(tmp, final)
            logger.info("downloaded module %s (%d bytes) to %s", sha256[:12], size, final)
            return final
        except TransportError as exc:
            raise self._unreachable(exc) from exc
        finally:
            tmp.unlink(missing_ok=True)

    @staticmethod
    def _served_name(response: Response, sha256: str) -> str:
        m = _DISPOSITION_RE.search(response.headers.get("content-disposition", ""))
        if m and is_file_name(m.group(1)):
            return m.group(1)
        return f"{sha256}.so"

    def healthz(self) -> dict[str, Any]:
        return self._json("GET", "/healthz")
