"""The web UI (Jinja2 templates, server-rendered): an edge mounted by ``server.app``.

Routes read through ``services`` (``browse`` for pages) and render; forms write through the
same services as the API. May import every layer below it and ``server``'s request helpers
(``server.auth``).
"""
