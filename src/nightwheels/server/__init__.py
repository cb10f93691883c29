"""The HTTP server (FastAPI/Starlette on uvicorn): an edge.

``app.create_app`` wires everything: the simple pages, files, uploads (``/legacy/``), the
JSON API (``api/``), ``/as-of/``, health and metrics, and mounts the web UI (``web``).
Handlers parse a request, call a service, render the answer; errors are mapped once
(``errors``). May import every layer below it, and ``web``.
"""
