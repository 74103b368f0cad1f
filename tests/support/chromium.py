"""Headless Chromium for page tests: find it (fail under CI=true when missing) and load a page."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

from tests.support.components import require


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which(
        "google-chrome")
    require("chromium", exe is not None, "apt-get install chromium")
    return exe


def browse(target: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Load ``target`` (a URL, or a file path) in a fresh headless profile with ``args``."""
    url = target if re.match(r"^[a-z]+://", target) else "file://" + os.path.abspath(target)
    profile = tempfile.mkdtemp(prefix="hpcnas-chromium-")
    try:
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update",
               "--no-first-run", f"--user-data-dir={profile}", *args, url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def dump_dom(target: str, budget_ms: int = 5000) -> str:
    """The DOM after the page's scripts ran for ``budget_ms`` of virtual time."""
    proc = browse(target, f"--virtual-time-budget={budget_ms}", "--dump-dom")
    assert "<html" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout
