"""The management API's HTTP client (httpx), used by the CLI's remote commands.

Client-side. May import: ``errors`` and the package version; nothing of the server side.
"""
