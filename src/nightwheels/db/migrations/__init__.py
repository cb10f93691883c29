"""Alembic environment; ``versions/NNNN_<slug>.py`` list in the order they run."""
