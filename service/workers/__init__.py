"""Compile workers: the loop that claims a build, runs the compiler and reports (:mod:`.worker`), the
queue it reaches by database or by HTTP (:mod:`.queue_access`, :mod:`.http_access`), characterisations
between builds (:mod:`.characterising`), and the pool of worker processes ``serve`` and ``worker
--concurrency N`` run (:mod:`.pool`).

May import ``compiler``, ``registry``, ``service.settings``, ``service.logs`` and ``service.client`` (the HTTP
queue); never the API or the CLI.
"""
