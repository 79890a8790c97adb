"""kitt.redact: one redact_url, right for every host form, credentials never shown."""

from __future__ import annotations

import pytest
from support import REPO

from kitt.redact import redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://u:p@[::1]:8000", "http://<redacted>@[::1]:8000"),
        ("http://u:p@[::1]:8000/v1?x=1", "http://<redacted>@[::1]:8000/v1?x=1"),
        ("https://user:pw@host.example:443/v1", "https://<redacted>@host.example:443/v1"),
        ("http://user@10.0.0.1", "http://<redacted>@10.0.0.1"),
        ("http://a:b@c@d:1/", "http://<redacted>@d:1/"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("http://[bad-ipv6:x@y", "http://<redacted>@y"),
    ],
)
def test_one_redact_url_right_for_every_host(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_there_is_one_redact_url() -> None:
    defined = [path for path in (REPO / "kitt").rglob("*.py") if "def redact_url" in path.read_text()]
    assert [p.relative_to(REPO).as_posix() for p in defined] == ["kitt/redact.py"]
