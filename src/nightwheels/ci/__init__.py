"""CI integration: GitHub Actions workflows written by ``nightwheels ci init``."""
