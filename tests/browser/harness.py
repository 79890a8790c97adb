"""Render Markdown the way GitHub renders a PR comment, in headless Chromium, and measure it.

GitHub's renderer is approximated by markdown-it (HTML allowed, GFM tables), github-markdown-css
and the mermaid library for ```` ```mermaid ```` fences, all from npm (pinned below) and loaded
from local files; Debian's ``chromium`` renders the page at a comment's width. For each report
the page records, in the DOM, what a test asserts: mermaid syntax errors, the widest table,
the first visible line, and the charts' sizes and colours. The screenshot shows the comment as a
reviewer first sees it (details closed) or with every <details> open.

    python tests/browser/harness.py env      # install the npm packages into the cache (scripts/test)

Cache folder: ``$KITT_TEST_CACHE`` or ``~/.cache/kitt-tests``, keyed by the package versions.
"""

from __future__ import annotations

import fcntl
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGES = {"markdown-it": "14.1.0", "github-markdown-css": "5.9.0", "mermaid": "11.12.2"}
COMMENT_WIDTH = 900  # px: GitHub's comment column at its widest
WINDOW_WIDTH = 960
BUDGET_MS = 20_000  # virtual time for mermaid to lay out every chart
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--allow-file-access-from-files",
    "--force-device-scale-factor=1",
)


def cache_root() -> Path:
    return Path(os.environ.get("KITT_TEST_CACHE") or Path.home() / ".cache" / "kitt-tests")


def packages_dir() -> Path:
    key = hashlib.sha256(json.dumps(PACKAGES, sort_keys=True).encode()).hexdigest()[:12]
    return cache_root() / f"browser-npm-{key}"


def ensure_packages() -> Path:
    """node_modules with the pinned packages, installed once (npm) under a lock."""
    target = packages_dir()
    modules = target / "node_modules"
    if (target / ".complete").is_file():
        return modules
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{target}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".complete").is_file():
            return modules
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is not installed (.ci/run installs it with apt)")
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        specs = [f"{name}@{version}" for name, version in PACKAGES.items()]
        subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--ignore-scripts",
                "--prefix",
                str(target),
                *specs,
            ],
            check=True,
            timeout=600,
        )
        (target / ".complete").write_text(json.dumps(PACKAGES))
    return modules


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    return None


_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8">
<link rel="stylesheet" href="{css}">
<style>
body {{ margin: 0; background: {background}; }}
.markdown-body {{ box-sizing: border-box; width: {width}px; padding: 16px; }}
</style>
<script src="{markdown_it}"></script>
<script src="{mermaid}"></script>
</head><body>
<article class="markdown-body" id="body"></article>
<pre id="kitt-result" style="display:none"></pre>
<script>
const SOURCE = {source};
const OPEN = {open_details};
const MEASURE = {measure};
async function main() {{
  const md = window.markdownit({{html: true, linkify: true}});
  const defaultFence = md.renderer.rules.fence;
  md.renderer.rules.fence = (tokens, idx, options, env, self) => {{
    const token = tokens[idx];
    if (token.info.trim() === "mermaid") {{
      return '<pre class="mermaid">' + md.utils.escapeHtml(token.content) + '</pre>';
    }}
    return defaultFence(tokens, idx, options, env, self);
  }};
  const body = document.getElementById("body");
  body.innerHTML = md.render(SOURCE);
  const result = {{errors: [], charts: [], tables: []}};
  const visible = Array.from(body.querySelectorAll("h1,h2,h3,h4,p,li,table,summary"))
    .find(el => el.offsetParent !== null && el.innerText.trim());
  result.first_visible = visible ? visible.innerText.trim().split("\\n")[0] : null;
  result.first_tag = visible ? visible.tagName : null;
  const closed = Array.from(body.querySelectorAll("details")).filter(d => !d.open);
  if (OPEN) closed.forEach(d => d.open = true);
  mermaid.initialize({{startOnLoad: false, theme: "{theme}"}});
  const blocks = Array.from(body.querySelectorAll("pre.mermaid"));
  for (const block of blocks) {{
    try {{ await mermaid.parse(block.textContent); }}
    catch (error) {{ result.errors.push(String(error && error.message || error)); }}
  }}
  try {{ await mermaid.run({{nodes: blocks, suppressErrors: true}}); }}
  catch (error) {{ result.errors.push("run: " + String(error && error.message || error)); }}
  for (const block of blocks) {{
    const svg = block.querySelector("svg");
    if (!svg || svg.getAttribute("aria-roledescription") === "error") {{
      result.errors.push("not rendered: " + block.textContent.slice(0, 80)); continue;
    }}
    const box = svg.getBoundingClientRect();
    const strokes = Array.from(svg.querySelectorAll("path")).map(p => p.getAttribute("stroke")).filter(Boolean);
    result.charts.push({{width: box.width, height: box.height, strokes: strokes,
                        text: svg.textContent.slice(0, 300)}});
  }}
  result.column = body.clientWidth;
  for (const table of body.querySelectorAll("table")) {{
    result.tables.push({{scroll: table.scrollWidth, client: table.clientWidth,
                        head: table.rows[0] ? table.rows[0].innerText.slice(0, 80) : ""}});
  }}
  result.height = Math.ceil(body.getBoundingClientRect().bottom) + 8;
  if (MEASURE) closed.forEach(d => d.open = false);  // as a reviewer first sees it
  result.closed_height = Math.ceil(body.getBoundingClientRect().bottom) + 8;
  document.getElementById("kitt-result").textContent = JSON.stringify(result);
}}
main().catch(error => {{
  document.getElementById("kitt-result").textContent = JSON.stringify({{fatal: String(error)}});
}});
</script></body></html>
"""


@dataclass
class Rendered:
    """What the page measured, and where its screenshot is."""

    measured: dict[str, Any]
    screenshot: Path


def _page(markdown: str, modules: Path, *, open_details: bool, dark: bool, measure: bool = False) -> str:
    css = "github-markdown-dark.css" if dark else "github-markdown-light.css"
    return _PAGE.format(
        css=(modules / "github-markdown-css" / css).as_uri(),
        markdown_it=(modules / "markdown-it" / "dist" / "markdown-it.min.js").as_uri(),
        mermaid=(modules / "mermaid" / "dist" / "mermaid.min.js").as_uri(),
        source=json.dumps(markdown).replace("</", "<\\/"),
        open_details="true" if open_details else "false",
        measure="true" if measure else "false",
        width=COMMENT_WIDTH,
        background="#0d1117" if dark else "#ffffff",
        theme="dark" if dark else "default",
    )


def _chromium(chromium: str, profile: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={BUDGET_MS}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def render(
    markdown: str,
    out: Path,
    name: str,
    *,
    shot_open: bool = False,
    dark: bool = False,
    chromium: str | None = None,
    modules: Path | None = None,
) -> Rendered:
    """Render ``markdown`` as a comment and measure it with every <details> open (--dump-dom; the
    first visible line is taken before they open), then screenshot it at its full height, as a
    reviewer first sees it (details closed) or, with ``shot_open``, with everything open."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise RuntimeError("chromium is not installed")
    modules = modules or ensure_packages()
    out.mkdir(parents=True, exist_ok=True)
    measure_page, shot_page = out / f"{name}.measure.html", out / f"{name}.html"
    measure_page.write_text(_page(markdown, modules, open_details=True, dark=dark, measure=True), encoding="utf-8")
    shot_page.write_text(_page(markdown, modules, open_details=shot_open, dark=dark), encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="kitt-chromium-") as profile:
        dumped = _chromium(
            chromium, Path(profile), f"--window-size={WINDOW_WIDTH},2000", "--dump-dom", measure_page.as_uri()
        )
        match = re.search(r'<pre id="kitt-result"[^>]*>(.*?)</pre>', dumped.stdout, re.S)
        if not match or not match.group(1).strip():
            raise RuntimeError(
                f"chromium gave no measurements for {name} (rc {dumped.returncode}): {dumped.stderr[-1500:]}"
            )
        measured = json.loads(html.unescape(match.group(1)))
        if "fatal" in measured:
            raise RuntimeError(f"the page failed for {name}: {measured['fatal']}")
        shot = out / f"{name}.png"
        height = int(measured["height"]) if shot_open else int(measured["closed_height"])
        taken = _chromium(
            chromium,
            Path(profile),
            f"--window-size={WINDOW_WIDTH},{min(max(height, 200), 16_000)}",
            f"--screenshot={shot}",
            shot_page.as_uri(),
        )
        if not shot.is_file():
            raise RuntimeError(f"chromium took no screenshot of {name} (rc {taken.returncode}): {taken.stderr[-1500:]}")
    return Rendered(measured, shot)


if __name__ == "__main__":
    if sys.argv[1:] == ["env"]:
        print(ensure_packages())
    else:
        sys.exit("usage: harness.py env")
