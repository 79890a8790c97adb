"""GitHub's limits and defaults that more than one module relies on: each is stated once, here.

The values are facts of the platform (checked in the runner's and the REST API's docs), not
choices of kitt's; the report fits within them and the GitHub modules enforce them.
"""

from __future__ import annotations

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_SERVER_URL = "https://github.com"
# A comment body (and an issue body) is at most 65,536 characters; HTTP 422 beyond.
COMMENT_LIMIT = 65_536
# A job summary holds 1 MiB per step; kitt leaves half of it for what other steps append.
SUMMARY_LIMIT = 512 * 1024
# Every kitt comment starts with ``<!-- kitt-benchmark -->`` or ``<!-- kitt-benchmark:KEY -->``.
MARKER_NAME = "kitt-benchmark"
USER_AGENT = "kitt-benchmark-action"


def comment_size(text: str) -> int:
    """Characters as GitHub's limit counts them: UTF-16 code units (never fewer than code points),
    so an emoji counts twice and a body that fits here fits there."""
    return len(text.encode("utf-16-le")) // 2
