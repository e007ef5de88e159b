"""The registry as a service: its HTTP API, its compile workers and its Python client.

Sub-packages, each importing only those before it (and ``compiler`` and ``registry``)::

    settings, logs     shared: the one Settings object; the entry points' logging
    client             the Python client of the HTTP API (RegistryClient, publish): what simulation jobs
                       and notebooks import; the standard library's HTTP, no server framework
    workers            compile workers: the queue by database or by HTTP (through the client), the pool
    api                the FastAPI application (create_app), its routes, documents and web pages

``api`` and ``workers`` do not import each other: they meet in the database (the build queue) and over
HTTP. The command line (``nestml_registry.cli``) and the run-time front-ends (``nestml_registry.simulator``)
import this package, never the other way round.
"""
