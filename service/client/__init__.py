"""The Python client of a registry's HTTP API: :class:`RegistryClient` (:mod:`.registry_client`), its
errors, its retries, its HTTP on the standard library (:mod:`.http_transport`), this machine's local token,
and ``publish`` for notebooks (:mod:`.notebook`).

What simulation jobs, notebooks and the HTTP workers import: it may import ``compiler`` (integrity checks,
the toolchain's detection) and ``service.settings``, nothing of the API, the workers or the CLI, and no
server framework or database driver.
"""

from nestml_registry.service.client.errors import RegistryClientError
from nestml_registry.service.client.registry_client import RegistryClient

__all__ = ["RegistryClient", "RegistryClientError"]
