"""The HTTP API: ``create_app(settings)`` (:mod:`.app`), its routes (:mod:`.routes`), the documents they
answer with (:mod:`.schemas`, :mod:`.documents`, :mod:`.reads`), one error shape (:mod:`.errors`), who asks
(:mod:`.auth`, :mod:`.deps`), uploads, caches of hot reads, metrics, and the web pages (:mod:`.web`), which
render the same documents.

May import ``compiler``, ``registry`` and ``service.settings``; never the workers, the client or the CLI. It
never compiles: it queues builds for the workers.
"""
