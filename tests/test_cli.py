"""The CLI's own behaviour: engines commands, errors as one line, progress output."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import pytest

from kitt.bench.loadgen import Progress
from kitt.errors import KittError, UsageError
from kitt.progress import Reporter
from support import check_golden, clean_environ, run_kitt


def test_engines_list_names_every_engine_and_mode():
    done = run_kitt("engines", "list")
    assert done.returncode == 0
    rows = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()}
    assert rows == {
        "vllm": "docker/native",
        "sglang": "docker/native",
        "tgi": "docker/native",
        "llama-cpp": "docker/native",
        "ollama": "docker/native",
        "sim": "sim",
        "openai": "endpoint",
    }


def test_engines_setup_checks_the_native_command():
    done = run_kitt("engines", "setup", "sim")
    assert done.returncode == 0 and "native command found" in done.stdout
    done = run_kitt("engines", "setup", "sglang", "--native")
    assert done.returncode == 2 and "kitt: error: " in done.stderr and "sglang" in done.stderr


def test_engines_setup_without_a_docker_daemon_says_what_to_do():
    done = run_kitt("engines", "setup", "vllm")
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.startswith("kitt: error: ")]
    assert len(lines) == 1 and "docker" in lines[0].lower()


def test_usage_errors_exit_2():
    assert run_kitt("run", "-m", "x").returncode == 2  # argparse: -e and -o missing
    assert run_kitt("ci", "report", "--results-dir", "x", "--threshold", "-1").returncode == 2


def test_error_text_is_one_line_with_its_hint():
    error = KittError("engine said:\nboom?", hint="Do this.")
    assert str(error) == "engine said: boom? Do this."
    assert str(KittError("no period", hint="Fix it.")) == "no period. Fix it."
    assert UsageError("x").exit_code == 2 and KittError("x").exit_code == 1


class _FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_progress_line_on_a_terminal_and_groups_under_actions():
    terminal = _FakeTerminal()
    progress = Progress(done=3, total=8)
    line = "\r  latency-c1 run 1/5: 3/8 requests"
    with Reporter(terminal, redraw_s=0.01).track("latency-c1 run 1/5", progress):
        deadline = time.monotonic() + 30  # a bound for a stuck redraw; the test waits for the line itself
        while line not in terminal.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    assert line in terminal.getvalue()
    assert terminal.getvalue().endswith("\r\x1b[K")  # the line is cleared when tracking ends
    actions = io.StringIO()
    reporter = Reporter(actions, groups=True)
    with reporter.group("latency-c1"):
        with reporter.track("x", progress):
            pass
    assert actions.getvalue() == "::group::latency-c1\n::endgroup::\n"


HELP_GOLDEN = Path(__file__).parent / "golden" / "help"


@pytest.mark.parametrize("command", [(), ("run",), ("ci", "report")], ids=["kitt", "run", "ci-report"])
def test_help_matches_golden(command: tuple[str, ...]) -> None:
    """The help a user reads, word for word (KITT_UPDATE_GOLDEN=1 rewrites it, to be reviewed by eye).
    argparse lays help out differently across Python minor versions (3.10 says "optional
    arguments", 3.13 prints a metavar once), so the golden text is argparse's of 3.11 and 3.12."""
    if sys.version_info[:2] not in ((3, 11), (3, 12)):
        pytest.skip(f"the golden help is argparse's layout of Python 3.11/3.12, not {sys.version.split()[0]}'s")
    done = run_kitt(*command, "--help", env=clean_environ(COLUMNS="100"))
    assert done.returncode == 0 and done.stderr == ""
    check_golden(HELP_GOLDEN / ("-".join(("kitt", *command)) + ".txt"), done.stdout)
