"""The HTML report opened in headless Chromium: a non-blank page with every figure loaded."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from hpcnas.analytics.cli import main
from hpcnas.analytics.report import _SCRIPT
from tests.support.chromium import browse

pytestmark = [pytest.mark.e2e, pytest.mark.chromium]

T0 = 1_767_225_600.0


def loaded_images(html_path: str) -> tuple[int, int]:
    dom = browse(html_path, "--virtual-time-budget=5000", "--dump-dom").stdout
    m = re.search(r'id="images-loaded"[^>]*data-loaded="(-?\d+)"[^>]*data-total="(\d+)"', dom)
    assert m, f"no image count in the DOM: {dom[:500]}"
    return int(m.group(1)), int(m.group(2))


@pytest.fixture
def report(tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    start = T0 + np.sort(rng.uniform(0, 600, n))
    end = start + rng.uniform(5, 60, n)
    status = np.where(rng.uniform(size=n) < 0.1, "FAILED", "DONE")
    pd.DataFrame({
        "p:lr": rng.uniform(1e-4, 1e-1, n), "p:units": rng.integers(8, 128, n),
        "job_id": [f"j{i}" for i in range(n)],
        "objective": np.where(status == "DONE", rng.uniform(0, 1, n), np.nan),
        "status": status, "error": "", "submit_time": start - 1, "start_time": start,
        "end_time": end, "duration": end - start, "worker": "w",
    }).to_csv(tmp_path / "results.csv", index=False)
    out = tmp_path / "report"
    assert main(["report", str(tmp_path), "--nodes", "8", "-o", str(out)]) == 0
    return out / "report.html"


def test_report_renders_with_every_image_loaded(report, tmp_path):
    shot = tmp_path / "shot.png"
    proc = browse(str(report), f"--screenshot={shot}", "--window-size=1100,1400",
                  "--virtual-time-budget=5000")
    assert shot.exists(), proc.stderr[-2000:]
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (1400, 1100)
    assert pixels.std() > 10  # a blank page has std 0
    assert (pixels < 128).mean() > 0.005  # text and plot lines, not an empty white page
    loaded, total = loaded_images(str(report))
    # search, importance, parallel coordinates, objective vs parameter, utilization, throughput
    assert total == 6 and loaded == 6


def test_broken_image_is_detected(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<html><body><span id="images-loaded" data-loaded="-1"></span>'
                    '<img src="data:image/png;base64,bm90IGEgcG5n">'
                    f"<script>{_SCRIPT}</script></body></html>")
    assert loaded_images(str(page)) == (0, 1)
