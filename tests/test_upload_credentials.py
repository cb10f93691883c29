"""Where `nightwheels upload` sends the files: the server URL, checked before anything else."""

from __future__ import annotations

import pytest

from nightwheels.errors import Misconfigured
from nightwheels.upload.credentials import is_cleartext_remote, normalize_server


@pytest.mark.parametrize(
    ("given", "server"),
    [
        ("https://nightlies.example.org/", "https://nightlies.example.org"),
        ("https://nightlies.example.org/legacy/", "https://nightlies.example.org"),
        (" http://[::1]:8000/simple ", "http://[::1]:8000"),
        ("HTTPS://Example.org/sub", "HTTPS://Example.org/sub"),
        ("ftp://example.org", None),
        ("example.org", None),
        ("http://", None),
        ("http://host:port", None),
        ("http://[::1", None),
        ("http://ho\x00st", None),
    ],
)
def test_server_url(given: str, server: str | None) -> None:
    if server is None:
        with pytest.raises(Misconfigured, match="is not an http\\(s\\) URL"):
            normalize_server(given)
    else:
        assert normalize_server(given) == server


@pytest.mark.parametrize(
    ("server", "cleartext"),
    [
        ("http://nightlies.example.org", True),
        ("http://10.0.0.1:8000", True),
        ("https://nightlies.example.org", False),
        ("http://127.0.0.1:8000", False),
        ("http://LOCALHOST", False),
        ("http://[::1]:8000", False),
    ],
)
def test_cleartext_remote(server: str, cleartext: bool) -> None:
    assert is_cleartext_remote(server) is cleartext
