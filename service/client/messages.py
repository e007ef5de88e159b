"""What the client sends and how it reads what comes back: the names it checks (a module's sha256 and file
name), a build upload's files and pairs, and the error a registry's answer stands for."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nestml_registry.compiler.integrity import is_file_name, is_sha256
from nestml_registry.service.client.errors import RegistryClientError
from nestml_registry.service.client.http_transport import Response

URL_ENV = "NESTML_REGISTRY_URL"
TOKEN_ENV = "NESTML_REGISTRY_TOKEN"
FileArg = str | os.PathLike | tuple[str, bytes]


def check_sha256(sha256: str) -> str:
    if not is_sha256(sha256):
        raise ValueError(f"invalid sha256 {sha256!r}: give 64 lower-case hexadecimal digits")
    return sha256


def check_filename(name: str) -> str:
    if not is_file_name(name):
        raise ValueError(f"invalid module file name {name!r}: use letters, digits, '_', '-' and '.' only")
    return name


def error_from_response(response: Response) -> RegistryClientError:
    """The server's ``{"error": {...}}`` answer as an exception (or a readable one for anything else)."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        message = str(err.get("message") or f"HTTP {status}")
        error = RegistryClientError(message, status, err.get("code"), err.get("details"))
        error.retry_after = response.headers.get("retry-after")
        return error
    if isinstance(body, dict) and "detail" in body:  # a framework error that escaped the error handler
        return RegistryClientError(f"the registry answered HTTP {status}: {body['detail']}", status, "http_error",
                                   {"detail": body["detail"]})
    location = response.headers.get("location")
    if 300 <= status < 400 and location:  # a redirect not followed (only GET and HEAD are)
        return RegistryClientError(f"the registry at {response.url} answered HTTP {status}, a redirect to {location}: "
                                   f"use the registry's address there ({URL_ENV} or --server)", status, "redirected",
                                   {"location": location})
    text = (response.text or "").strip().replace("\n", " ")[:200]
    hint = " (is this URL a nestml-registry server?)" if status == 404 else ""
    return RegistryClientError(f"the registry at {response.url} answered HTTP {status}{hint}"
                               + (f": {text}" if text else ""), status, "http_error", {})


def file_part(item: FileArg) -> tuple[str, bytes]:
    if isinstance(item, tuple):
        name, data = item
        return str(name), bytes(data)
    path = Path(item)
    try:
        return path.name, path.read_bytes()
    except FileNotFoundError as exc:
        raise RegistryClientError(f"{path}: no such file", code="invalid_input") from exc
    except OSError as exc:
        raise RegistryClientError(f"{path}: cannot read ({exc.strerror})", code="invalid_input") from exc


def pair_dict(pair: Any) -> dict[str, Any]:
    """A pair as the API takes it, from a dict, a :class:`nestml_registry.compiler.request.Pair` or
    ``"NEURON:SYNAPSE[:PORT,...]"``."""
    if isinstance(pair, Mapping):
        return dict(pair)
    if hasattr(pair, "to_dict"):
        return pair.to_dict()
    if isinstance(pair, str):
        parts = pair.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"invalid pair {pair!r}: write NEURON:SYNAPSE, e.g. iaf_psc_exp_neuron:stdp_synapse")
        d: dict[str, Any] = {"neuron": parts[0], "synapse": parts[1]}
        if len(parts) == 3:
            d["post_ports"] = [p.strip() for p in parts[2].split(",") if p.strip()]
        return d
    raise ValueError(f"invalid pair {pair!r}: give a dict, a Pair or 'NEURON:SYNAPSE'")
