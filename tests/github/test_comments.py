"""upsert_pr_comment against the contract-checked GitHub double."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

import pytest

from kitt.errors import GitHubError, UsageError
from kitt.github.http import RetryPolicy
from kitt.platform import COMMENT_LIMIT
from kitt.github.comments import (
    TRUNCATION_NOTE,
    CommentForbidden,
    comment_marker,
    fit_comment_body,
    upsert_pr_comment,
)

REPO = "octo-org/kitt-demo"
PR = 7
UNKEYED = "<!-- kitt-benchmark -->"


def upsert(
    double: Any,
    body: str,
    attempts: int = 4,
    max_wait_s: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> Any:
    """Upsert with a fast retry policy (``attempts``, ``max_wait_s`` and ``sleep`` are its fields)."""
    retry = RetryPolicy(attempts=attempts, first_delay_s=0.01, max_wait_s=max_wait_s, sleep=sleep)
    options: dict[str, Any] = dict(token=double.token, repo=REPO, pr=PR, api_url=double.api_url, retry=retry)
    return upsert_pr_comment(body=body, **{**options, **kwargs})


@pytest.fixture
def double(github_double: Any) -> Any:
    github_double.add_pull(PR)
    return github_double


def test_marker_on_page_two_of_150_comments_is_edited(double: Any) -> None:
    for i in range(120):
        double.add_comment(PR, f"comment {i}")
    ours = double.add_comment(PR, f"{UNKEYED}\nold table", user="github-actions[bot]")
    for i in range(29):
        double.add_comment(PR, f"later {i}")
    result = upsert(double, "new table")
    assert (result.action, result.id) == ("updated", ours.id)
    assert result.url.endswith(f"#issuecomment-{ours.id}")
    assert len(double.comments(PR)) == 150
    assert double.comment_by_id(ours.id).body == f"{UNKEYED}\nnew table"
    pages = [dict(r.query).get("page", "1") for r in double.requests_for("issues/list-comments")]
    assert pages == ["1", "2"]
    assert double.requests_for("issues/create-comment") == []


def test_quoted_marker_in_someone_elses_comment_does_not_match(double: Any) -> None:
    quoted = double.add_comment(PR, f"> {UNKEYED}\n> old numbers\n\nWhy did TTFT move?")
    inline = double.add_comment(PR, f"The bot writes {UNKEYED} at the top")
    result = upsert(double, "report")
    assert result.action == "created"
    assert double.comment_by_id(quoted.id).body.startswith("> ")
    assert double.comment_by_id(inline.id).body.startswith("The bot")
    assert [c.body for c in double.comments(PR)][-1] == f"{UNKEYED}\nreport"


def test_two_matrix_keys_each_own_one_comment(double: Any) -> None:
    longer = double.add_comment(PR, "<!-- kitt-benchmark:ab -->\nab's report")
    first_a = upsert(double, "a v1", key="a")
    first_b = upsert(double, "b v1", key="b")
    second_a = upsert(double, "a v2", key="a")
    second_b = upsert(double, "b v2", key="b")
    assert (first_a.action, first_b.action, second_a.action, second_b.action) == (
        "created",
        "created",
        "updated",
        "updated",
    )
    assert (second_a.id, second_b.id) == (first_a.id, first_b.id) and first_a.id != first_b.id
    bodies = {c.id: c.body for c in double.comments(PR)}
    assert bodies == {
        longer.id: "<!-- kitt-benchmark:ab -->\nab's report",
        first_a.id: "<!-- kitt-benchmark:a -->\na v2",
        first_b.id: "<!-- kitt-benchmark:b -->\nb v2",
    }
    unkeyed = upsert(double, "no key")
    assert unkeyed.action == "created" and unkeyed.id not in bodies


def test_newest_of_several_marked_comments_is_edited(double: Any) -> None:
    older = double.add_comment(PR, f"{UNKEYED}\nfirst", user="github-actions[bot]")
    newer = double.add_comment(PR, f"{UNKEYED}\nsecond", user="github-actions[bot]")
    result = upsert(double, "third")
    assert result.id == newer.id
    assert double.comment_by_id(older.id).body == f"{UNKEYED}\nfirst"
    assert len(double.comments(PR)) == 2


def test_identical_body_is_not_sent_again(double: Any) -> None:
    first = upsert(double, f"{UNKEYED}\nsame")  # already marked: not prefixed twice
    second = upsert(double, "same")
    assert (first.action, second.action, second.id) == ("created", "updated", first.id)
    assert double.comment_by_id(first.id).body == f"{UNKEYED}\nsame"
    assert double.requests_for("issues/update-comment") == []


def test_read_only_token_raises_comment_forbidden_without_the_token(double: Any) -> None:
    with pytest.raises(CommentForbidden) as caught:
        upsert(double, "report", token=double.read_only_token)
    message = str(caught.value)
    assert "HTTP 403" in message and "pull-requests: write" in message and "workflow_run" in message
    assert double.read_only_token not in message
    assert double.comments(PR) == []


def test_403_on_create_is_comment_forbidden(double: Any) -> None:
    double.fail_next("issues/create-comment", 403)
    with pytest.raises(CommentForbidden):
        upsert(double, "report")
    assert len(double.requests_for("issues/create-comment")) == 1


def test_502_then_success_on_edit(double: Any) -> None:
    ours = double.add_comment(PR, f"{UNKEYED}\nold")
    double.fail_next("issues/update-comment", 502)
    result = upsert(double, "new")
    assert (result.action, result.id) == ("updated", ours.id)
    assert [r.status for r in double.requests_for("issues/update-comment")] == [502, 200]
    assert double.comment_by_id(ours.id).body == f"{UNKEYED}\nnew"


def test_a_comment_deleted_before_its_edit_is_created_afresh(double: Any) -> None:
    ours = double.add_comment(PR, f"{UNKEYED}\nold", user="github-actions[bot]")
    double.delete_comment_before_next("issues/update-comment", ours.id)
    result = upsert(double, "new")
    assert [r.status for r in double.requests_for("issues/update-comment")] == [404]
    (fresh,) = double.comments(PR)
    assert result.action == "created" and result.id == fresh.id != ours.id
    assert fresh.body == f"{UNKEYED}\nnew"


def test_edit_gives_up_after_max_attempts(double: Any) -> None:
    double.add_comment(PR, f"{UNKEYED}\nold")
    double.fail_next("issues/update-comment", 502, times=5)
    with pytest.raises(GitHubError, match="HTTP 502") as caught:
        upsert(double, "new", attempts=3)
    assert not isinstance(caught.value, CommentForbidden)
    assert len(double.requests_for("issues/update-comment")) == 3


def test_secondary_rate_limit_on_edit_honours_retry_after(double: Any) -> None:
    double.add_comment(PR, f"{UNKEYED}\nold")
    double.rate_limit_next("issues/update-comment", retry_after=1)
    waits: list[float] = []
    assert upsert(double, "new", sleep=waits.append).action == "updated"
    assert waits == [1.0]  # the server's Retry-After, waited once before the retry
    assert [r.status for r in double.requests_for("issues/update-comment")] == [403, 200]


def test_retry_after_beyond_the_cap_is_not_waited_for(double: Any) -> None:
    double.add_comment(PR, f"{UNKEYED}\nold")
    double.rate_limit_next("issues/update-comment", retry_after=600)
    with pytest.raises(GitHubError, match="secondary rate limit") as caught:
        upsert(double, "new", max_wait_s=5)
    assert not isinstance(caught.value, CommentForbidden)


def test_create_that_failed_after_the_server_stored_it_is_not_duplicated(double: Any) -> None:
    double.fail_next("issues/create-comment", 502, after_handling=True)
    result = upsert(double, "report")
    comments = double.comments(PR)
    assert len(comments) == 1 and result.id == comments[0].id and result.action == "created"
    assert len(double.requests_for("issues/create-comment")) == 1
    assert len(double.requests_for("issues/list-comments")) == 2  # listed again before re-creating


def test_create_that_failed_before_storing_is_retried_once(double: Any) -> None:
    double.fail_next("issues/create-comment", 502)
    result = upsert(double, "report")
    assert [c.id for c in double.comments(PR)] == [result.id]
    assert [r.status for r in double.requests_for("issues/create-comment")] == [502, 201]


def test_body_of_200_kb_is_cut_with_a_visible_note(double: Any) -> None:
    body = "| model | ttft |\n|---|---|\n" + "| m | 1.0 |\n" * 20_000
    result = upsert(double, body, key="big")
    stored = double.comment_by_id(result.id).body
    assert len(body) > 200_000 and len(stored) <= COMMENT_LIMIT
    assert stored.startswith("<!-- kitt-benchmark:big -->\n| model |")
    assert stored.endswith(TRUNCATION_NOTE)
    assert "| m | 1.0 |\n\n---" in stored  # cut at a line end, not mid-row


def test_fit_comment_body_closes_an_open_code_fence_and_details() -> None:
    body = "<details><summary>raw</summary>\n\n```text\n" + "sample line\n" * 10_000
    fitted = fit_comment_body(body, limit=5_000)
    assert len(fitted) <= 5_000
    before_note = fitted[: -len(TRUNCATION_NOTE)]
    assert before_note.endswith("\n```\n</details>")
    assert fit_comment_body("short", limit=5_000) == "short"


@pytest.mark.parametrize("key", ["a-->b", "a\nb", " padded", "x" * 101, "a--!>b"])
def test_bad_keys_are_usage_errors(double: Any, key: str) -> None:
    with pytest.raises(UsageError, match="comment key"):
        upsert(double, "report", key=key)
    assert double.log == []


def test_markers() -> None:
    assert comment_marker() == comment_marker("") == UNKEYED
    assert comment_marker("llama-3 (H100)") == "<!-- kitt-benchmark:llama-3 (H100) -->"


def test_bad_token_says_what_to_do_and_never_leaks(double: Any, caplog: pytest.LogCaptureFixture) -> None:
    # Shaped like a real personal token; assembled here so no token-like literal sits in the repository.
    secret = "ghp_" + "0123456789abcdef" + "SECRET" * 2 + "0123456789"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(GitHubError, match="HTTP 401") as caught:
        upsert(double, "report", token=secret)
    assert "github-token" in str(caught.value)
    assert secret not in str(caught.value) and secret not in caplog.text


def test_missing_pull_request_is_a_clear_error(double: Any) -> None:
    with pytest.raises(GitHubError, match=r"octo-org/kitt-demo#999.*HTTP 404"):
        upsert(double, "report", pr=999)


@pytest.mark.parametrize("repo", ["kitt-demo", "a/b/c", "/x"])
def test_bad_repository_is_a_usage_error(double: Any, repo: str) -> None:
    with pytest.raises(UsageError, match="owner/name"):
        upsert(double, "report", repo=repo)
