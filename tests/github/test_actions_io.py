"""Actions I/O: annotation caps, the 1 MiB job summary, multi-line outputs, masks, the run's context."""

from __future__ import annotations

import json

from kitt.github.actions_io import MAX_SUMMARY_BYTES, ActionsContext, Annotations, append_summary, mask, set_output


def test_more_than_ten_errors_are_folded_into_the_tenth(capsys):
    notes = Annotations(enabled=True)
    for i in range(14):
        notes.error(f"metric {i} regressed")
    notes.warning("one warning")
    notes.flush()
    lines = capsys.readouterr().out.splitlines()
    errors = [line for line in lines if line.startswith("::error")]
    assert len(errors) == 10  # GitHub shows at most 10 per step
    assert errors[-1].startswith("::error title=5 further errors::5 more: metric 9 regressed; metric 10")
    assert [line for line in lines if line.startswith("::warning")] == ["::warning::one warning"]


def test_outside_actions_annotations_are_plain_stderr_lines(capsys):
    Annotations(enabled=False).error("boom")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "error: boom\n"


def test_multiline_output_uses_a_heredoc_delimiter(tmp_path):
    path = tmp_path / "out"
    set_output("report", "line one\nline two", path)
    text = path.read_text()
    name, rest = text.split("<<", 1)
    delimiter, body = rest.split("\n", 1)
    assert name == "report" and body == f"line one\nline two\n{delimiter}\n"


def test_summary_is_capped_at_one_mebibyte(tmp_path):
    path = tmp_path / "summary.md"
    path.write_text("x" * (MAX_SUMMARY_BYTES - 1000))
    assert append_summary("y" * 5000, path)
    data = path.read_bytes()
    assert len(data) <= MAX_SUMMARY_BYTES and data.rstrip().endswith(b"holds at most 1 MiB per step._")
    assert not append_summary("z", path)  # full: nothing more goes in
    assert not append_summary("text", None)


def test_mask_each_line_of_a_secret(capsys):
    mask("first\nsecond", enabled=True)
    assert capsys.readouterr().out.splitlines() == ["::add-mask::first", "::add-mask::second"]
    mask("secret", enabled=False)
    assert capsys.readouterr().out == ""


def test_context_from_the_runner_environment(tmp_path):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}))
    context = ActionsContext.from_environment(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_API_URL": "https://ghe.example.com/api/v3",
            "GITHUB_SERVER_URL": "https://ghe.example.com",
            "GITHUB_REPOSITORY": "o/r",
            "GITHUB_RUN_ID": "42",
            "GITHUB_EVENT_PATH": str(event),
            "GITHUB_BASE_REF": "main",
            "KITT_ACTION_FLAVOUR": "docker",
        }
    )
    assert context.in_actions and context.api_url == "https://ghe.example.com/api/v3"
    assert context.run_url == "https://ghe.example.com/o/r/actions/runs/42"
    assert context.event()["pull_request"]["number"] == 7 and context.flavour == "docker"
    bare = ActionsContext.from_environment({})
    assert bare.api_url == "https://api.github.com" and bare.run_url is None and bare.event() == {}
    assert bare.flavour == "cli" and not bare.in_actions


def test_runner_temp_that_is_not_there_is_ignored(tmp_path):
    """A Docker action gets the host's RUNNER_TEMP, unmounted (actions/runner#1984): use the system's."""
    assert ActionsContext.from_environment({"RUNNER_TEMP": str(tmp_path)}).temp_dir == tmp_path
    assert ActionsContext.from_environment({"RUNNER_TEMP": str(tmp_path / "absent")}).temp_dir is None
