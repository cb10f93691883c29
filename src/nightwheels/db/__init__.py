"""The database: SQLAlchemy models, engines and sessions, shared queries, migrations.

May import: nothing of nightwheels but ``core`` and ``errors`` (today it needs neither).
``queries`` holds the phrases every service shares (``LIVE``, ``project_by_name``).
"""
