"""Where notices go: GitHub issues, signed webhooks, e-mail (freshness notices, nightly
test reports).

May import: ``config``, ``core``, ``errors``; nothing of ``db``, ``storage`` or ``services``.
"""
