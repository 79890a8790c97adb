"""The action files: what the README documents, what both flavours share, and no shell injection."""

from __future__ import annotations

import re

import pytest
import yaml

from support import REPO

COMPOSITE = yaml.safe_load((REPO / "action.yml").read_text())
DOCKER = yaml.safe_load((REPO / "report" / "action.yml").read_text())
# Inputs both flavours declare with a different default, on purpose.
DIFFERENT_DEFAULTS = {
    "model": "required to benchmark; report mode has no model to serve",
    "engine": "the Docker flavour cannot reach a GPU, so it benchmarks an existing endpoint",
    "pr": "in report mode the PR comes from the results artifact, checked against GitHub",
}


def readme_table(header: str) -> dict[str, list[str]]:
    """Rows of the README table whose header line starts with ``header``, keyed by first cell."""
    lines = (REPO / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_readme_inputs_table_matches_action_yml():
    table = readme_table("| Input | Default | Description |")
    assert list(table) == list(COMPOSITE["inputs"])
    for name, spec in COMPOSITE["inputs"].items():
        default, description = table[name]
        expected_default = "*required*" if spec.get("required") else (f"`{spec['default']}`" if spec["default"] else "")
        assert default == expected_default, name
        assert description == " ".join(spec["description"].split()), name


def test_readme_outputs_table_matches_action_yml():
    table = readme_table("| Output | Description |")
    assert list(table) == list(COMPOSITE["outputs"])
    for name, spec in COMPOSITE["outputs"].items():
        assert table[name] == [" ".join(spec["description"].split())], name


def test_both_flavours_declare_the_same_inputs_and_outputs_where_they_overlap():
    shared = set(COMPOSITE["inputs"]) & set(DOCKER["inputs"])
    assert {
        "model",
        "engine",
        "suite",
        "baseline-artifact",
        "github-token",
        "threshold",
        "fail-on-regression",
        "comment",
        "comment-key",
        "artifact-name",
        "upload-artifact",
        "results-dir",
    } <= shared
    for name in shared:
        mine, theirs = COMPOSITE["inputs"][name], DOCKER["inputs"][name]
        assert mine["description"] == theirs["description"], name
        if name not in DIFFERENT_DEFAULTS:
            assert mine.get("default") == theirs.get("default"), name
    assert COMPOSITE["outputs"].keys() == DOCKER["outputs"].keys()
    for name in COMPOSITE["outputs"]:
        assert COMPOSITE["outputs"][name]["description"] == DOCKER["outputs"][name]["description"]


def test_marketplace_metadata():
    for action in (COMPOSITE, DOCKER):
        assert action["name"] and action["description"] and action["author"]
        assert action["branding"]["icon"] and action["branding"]["color"]
    assert COMPOSITE["name"] != DOCKER["name"]  # Marketplace names are unique


def test_every_input_has_a_description_and_a_default():
    for action in (COMPOSITE, DOCKER):
        for name, spec in action["inputs"].items():
            assert spec.get("description"), name
            assert spec.get("required") or "default" in spec, name


def test_inputs_never_reach_a_shell_through_expressions():
    for step in COMPOSITE["runs"]["steps"]:
        if "run" in step:
            assert step.get("shell"), step.get("name")
            assert "${{" not in step["run"], f"{step.get('name')}: pass values through env:, not ${{{{ }}}} in run:"


def test_the_composite_passes_every_input_to_the_entrypoint():
    step = next(s for s in COMPOSITE["runs"]["steps"] if s.get("id") == "kitt")
    env = step["env"]
    for name in COMPOSITE["inputs"]:
        key = "INPUT_" + name.upper().replace("-", "_")
        assert env[key] == f"${{{{ inputs.{name} }}}}", name
    assert env["KITT_ACTION_FLAVOUR"] == "composite"
    assert DOCKER["runs"]["env"]["KITT_ACTION_FLAVOUR"] == "docker"


def test_third_party_actions_are_pinned_by_sha():
    uses = re.findall(r"uses:\s*([^\s#]+)", (REPO / "action.yml").read_text())
    for workflow in (REPO / ".github" / "workflows").glob("*.yml"):
        uses += re.findall(r"uses:\s*([^\s#]+)", workflow.read_text())
    third_party = [u for u in uses if not u.startswith(("./", "kitt/"))]
    assert third_party
    for ref in third_party:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), ref


def test_the_docker_flavour_names_a_prebuilt_image_by_full_version():
    image = DOCKER["runs"]["image"]
    assert re.fullmatch(r"docker://ghcr\.io/kitt/benchmark-action:v\d+\.\d+\.\d+", image)
    from kitt import __version__

    assert image.endswith(f":v{__version__}")


@pytest.mark.parametrize("workflow", sorted((REPO / ".github" / "workflows").glob("*.yml")), ids=lambda p: p.name)
def test_workflows_start_from_no_permissions(workflow):
    data = yaml.safe_load(workflow.read_text())
    assert data["permissions"] == {}
    for job in data["jobs"].values():
        assert "permissions" in job
