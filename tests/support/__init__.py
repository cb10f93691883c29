"""What every test file shares; use these instead of writing another.

- a live server: the ``live_server`` factory and ``server`` fixtures (``tests/conftest.py``),
  built on ``server.LiveServer``: in a thread of the test process unless the test needs a
  process (signals, memory, logs: ``in_thread=False`` or ``@pytest.mark.server_process``);
- the backends: ``backends`` (SQLite + folder, or a fresh PostgreSQL database copied from a
  migrated template + a moto S3 bucket); ``seed.open_services`` for in-process service tests;
- one upload: ``uploads.post_wheel`` (the legacy protocol as twine sends it);
- the CLI: ``LiveServer.cli`` and ``cli.nightwheels``/``cli.Cli``, in-process (``real=True``
  runs ``python -m nightwheels`` where the entry point itself is under test);
- real clients: ``clients`` (pip, uv, twine isolated from this machine's configuration);
- wheels: ``wheels.make_wheel``; accounts and tokens: ``access``; OIDC: ``oidc``.
"""
