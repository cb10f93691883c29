"""``nightwheels upload``: the standard-library upload client (legacy and batch protocol,
trusted publishing, retries, progress).

Client-side, start-up time matters (no httpx, no typer). May import: ``core``, ``errors``,
the package version.
"""
