"""report.html: self-contained, every section and plot present; rendered in headless Chromium."""

from __future__ import annotations

import base64
import html.parser
import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest

SECTIONS = ("summary", "pruning", "mss", "latency", "environment")


class _Collector(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "img":
            self.images.append(str(a.get("src")))


def test_html_report_is_self_contained(small_run: Path) -> None:
    from matplotlib import image

    page = (small_run / "report.html").read_text()
    parser = _Collector()
    parser.feed(page)
    assert set(SECTIONS) <= parser.ids
    assert len(parser.images) == 4 and "http" not in "".join(parser.images) and "<script" not in page
    for src in parser.images:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert image.imread(io.BytesIO(png)).shape[0] > 100


def test_plots_are_deterministic(small_run: Path) -> None:
    import json

    from cosep_deploy.bench.plots import plot_kept_channels, plot_speedup

    plan = json.loads((small_run / "pruned" / "plan.json").read_text())
    bench = json.loads((small_run / "bench" / "bench.json").read_text())
    assert plot_kept_channels(plan) == plot_kept_channels(plan)
    assert plot_speedup(bench) == plot_speedup(bench)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium is not installed (make test installs it)")
def test_report_renders_in_headless_chromium(small_run: Path, tmp_path: Path) -> None:
    from matplotlib import image

    browser = _chromium()
    assert browser
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    url = (small_run / "report.html").resolve().as_uri()
    shot = tmp_path / "report.png"
    subprocess.run(
        [browser, *flags, f"--screenshot={shot}", "--window-size=1280,2400", url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert all(f'id="{s}"' in dom for s in SECTIONS) and dom.count("<img") == 4
    pixels = image.imread(str(shot))
    assert pixels.shape[0] > 1000 and float(pixels.std()) > 0.05  # a rendered page, not a blank one
    if os.environ.get("COSEP_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["COSEP_SCREENSHOT_DIR"]) / "report.png")
