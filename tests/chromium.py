"""Open a page in Debian's headless Chromium: its DOM after the scripts ran, the errors it
logged, and a screenshot (installed by scripts/install-system-deps).

The page is opened as a copy with a probe first in <head>: a Content-Security-Policy that
allows nothing from the network (inline scripts and styles only), and a script that
records uncaught errors, unhandled rejections, CSP violations and console.error/warn
calls into ``<body data-errors>``, which ``--dump-dom`` then shows.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--virtual-time-budget=5000",
)

PROBE = """<meta http-equiv="Content-Security-Policy" content="default-src 'none'; \
script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<script>
window.__errors = [];
const save = () => {
  if (document.body) document.body.dataset.errors = JSON.stringify(window.__errors);
};
const note = (text) => { window.__errors.push(text); save(); };
window.addEventListener("error", (e) => note("error: " + e.message));
window.addEventListener("unhandledrejection", (e) => note("rejection: " + e.reason));
document.addEventListener(
  "securitypolicyviolation", (e) => note("csp: " + e.violatedDirective + " " + e.blockedURI)
);
for (const level of ["error", "warn"]) {
  const original = console[level];
  console[level] = (...args) => { note(level + ": " + args.join(" ")); original(...args); };
}
window.addEventListener("load", save);
</script>
"""


def chromium_binary() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise RuntimeError("chromium is not installed: run scripts/install-system-deps (as root)")
    return found


@dataclass
class Page:
    dom: str
    errors: list[str]
    figures: dict[str, Any]
    rendered: bool


def _attribute(dom: str, name: str) -> str | None:
    marker = f'{name}="'
    start = dom.find(marker)
    if start < 0:
        return None
    end = dom.index('"', start + len(marker))
    return html.unescape(dom[start + len(marker) : end])


def _run(args: list[str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run(
            [chromium_binary(), *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def open_page(path: Path) -> Page:
    """Load ``path`` (a copy with the probe) and return its DOM, errors and figures."""
    text = path.read_text(encoding="utf-8")
    probed = path.with_name(path.stem + ".probe.html")
    probed.write_text(text.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    result = _run(["--dump-dom", probed.as_uri()])
    dom = result.stdout
    if "<body" not in dom:
        raise RuntimeError(f"chromium printed no DOM (exit {result.returncode}): {result.stderr}")
    errors = _attribute(dom, "data-errors")
    figures = _attribute(dom, "data-figures")
    return Page(
        dom=dom,
        errors=["the probe did not run"] if errors is None else json.loads(errors),
        figures={} if figures is None else json.loads(figures),
        rendered=_attribute(dom, "data-rendered") == "yes",
    )


def screenshot(path: Path, target: Path, width: int = 1200, height: int = 2200) -> Path:
    """A PNG of the page at ``width`` x ``height`` CSS pixels."""
    result = _run([f"--window-size={width},{height}", f"--screenshot={target}", path.as_uri()])
    if not target.exists() or target.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no screenshot (exit {result.returncode})")
    return target
