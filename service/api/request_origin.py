"""Which requests may change something: sent to one of the registry's own names, from its own pages.

A browser lets any page it shows send requests to any address, this machine's loopback included, and a
DNS-rebinding page can even give its requests a name of its own that points here. Every request that
changes something (any method but GET, HEAD and OPTIONS), to the JSON API and the pages alike, is
therefore refused (403) unless

- its ``Host`` is one of the registry's names (``NESTML_REGISTRY_ALLOWED_HOSTS``; by default this
  machine's loopback names and its host name), and
- what the browser says it comes from (``Origin``, else ``Referer``, else ``Sec-Fetch-Site``) is
  this server itself. Programs (the CLI, the Python client, workers) send none of these and pass. The one
  exception is NEST Desktop's front door, ``/compat/nestml-server``, which pages of the origins
  :mod:`nestml_registry.service.api.cross_origin` lets in may call (with a publisher's token to build).

Any request whose path or query holds a NUL character is refused (422) as well, on every database alike
(PostgreSQL cannot store one; SQLite would).

Tokens do the rest: nothing publishes without one (see :mod:`nestml_registry.service.api.auth`), and a
page has none to present (the sign-in cookie is ``SameSite=Strict`` and read by the pages only).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request

from nestml_registry.service.api.cross_origin import is_front_door, origin_allowed, refusal
from nestml_registry.service.api.errors import NUL_MESSAGE, ApiError
from nestml_registry.service.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def host_name(host_header: str) -> str:
    """The name in a ``Host`` header, without its port (``[::1]:8000`` -> ``::1``)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def check_request_origin(request: Request) -> None:
    """Refuse (403) a state-changing request to a name that is not the registry's, or from another site."""
    if "\x00" in request.url.path or any("\x00" in k or "\x00" in v for k, v in request.query_params.multi_items()):
        raise ApiError(422, "invalid_input", NUL_MESSAGE, {})
    if request.method in SAFE_METHODS:
        return
    settings: Settings = request.app.state.settings
    host = request.headers.get("host", "")
    allowed = settings.allowed_hosts
    if "*" not in allowed and host_name(host).rstrip(".") not in allowed:
        raise ApiError(403, "host_not_allowed",
                       f"this request was sent to the name {host[:100]!r}, which is not one of this registry's "
                       f"names ({', '.join(allowed)}): use one of those, or have the administrator add it to "
                       "NESTML_REGISTRY_ALLOWED_HOSTS", {"host": host[:100], "allowed": list(allowed)})
    origin_header = request.headers.get("origin")
    claimed = origin_header or request.headers.get("referer")
    if origin_header and is_front_door(request.url.path):
        if origin_allowed(origin_header, settings):
            return  # NEST Desktop's page (service.cross_origin); what it may do, its token decides
        raise ApiError(403, "cross_origin", refusal(origin_header), {"origin": origin_header[:100]})
    if claimed:
        origin = urlsplit(claimed)  # "null" (a sandboxed frame, a data: URL) is another origin too
        here = urlsplit(str(request.base_url))
        if (origin.scheme, origin.netloc.lower()) != (here.scheme, here.netloc.lower()):
            shown = f"{origin.scheme}://{origin.netloc[:100]}" if origin.netloc else claimed[:100]
            raise ApiError(403, "cross_origin", f"this request was sent from another site ({shown}): open the page "
                           "on this registry and send it from there, or use the CLI or the Python client",
                           {"origin": shown})
    elif request.headers.get("sec-fetch-site", "") in ("cross-site", "same-site"):
        raise ApiError(403, "cross_origin", "this request was sent by a page of another site: open the page on this "
                       "registry and send it from there", {"sec-fetch-site": request.headers["sec-fetch-site"]})
