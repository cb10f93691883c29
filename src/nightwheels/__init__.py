"""nightwheels: a self-hostable nightly wheel index and the CI tools around it."""

__version__ = "0.1.0"
