"""The ``nestml-registry`` command: one module per command group (:mod:`.main` assembles them), and what
they share (:mod:`.command_line`: exit statuses, the remote options, the one way an error is shown;
:mod:`.console`: progress and tables).

The top of the import order: it may import every other part (``compiler``, ``registry``, ``service``,
``simulator``); nothing imports it.
"""
