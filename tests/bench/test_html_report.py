"""report.html from a real small run: self-contained, complete, escaped; rendered in headless Chromium."""

from __future__ import annotations

import base64
import html.parser
import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cosep_deploy.bench import BenchConfig
from cosep_deploy.bench.html_report import accuracy_points_from_run, write_html_report
from cosep_deploy.bench.layers import LayersReport
from cosep_deploy.bench.report import summary_lines, write_report
from cosep_deploy.errors import CosepError
from cosep_deploy.finetune import TrainConfig
from cosep_deploy.pipeline import PipelineConfig, RunLayout, RunSpec, run_pipeline
from cosep_deploy.pipeline.stages import layers_stage

SECTIONS = ("summary", "pruning", "plots", "environment")
FIGURES = ("plot-kept-channels", "plot-mss-curves", "plot-latency", "plot-speedup", "plot-accuracy")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EVIL = "<script>alert('x')</script>"
# elements that must be closed: a missing end tag would shift whole sections in the browser
CLOSED = ("html", "head", "body", "section", "table", "tr", "td", "th", "figure", "figcaption", "nav", "details")


class _Page(html.parser.HTMLParser):
    """Ids, images, links, start/end tag balance and the table cells of each section."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.images: list[dict[str, str | None]] = []
        self.links: list[str] = []
        self.balance: dict[str, int] = {}
        self.cells: dict[str, list[str]] = {}
        self.section = ""
        self.in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "section":
            self.section = str(a.get("id"))
        if tag == "img":
            self.images.append(a)
        if tag in ("a", "link") or "href" in a:
            self.links.append(str(a.get("href")))
        if tag in CLOSED:
            self.balance[tag] = self.balance.get(tag, 0) + 1
        if tag == "td":
            self.in_cell = True
            self.cells.setdefault(self.section, []).append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in CLOSED:
            self.balance[tag] = self.balance.get(tag, 0) - 1
        if tag == "td":
            self.in_cell = False

    def handle_data(self, data: str) -> None:
        if self.in_cell:
            self.cells[self.section][-1] += data


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


def _png(src: str | None) -> bytes:
    assert src is not None and src.startswith("data:image/png;base64,")
    return base64.b64decode(src.split(",", 1)[1], validate=True)


@pytest.fixture(scope="module")
def report_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A complete run (digits 8x8, ResNet-20, tiny schedules) benchmarked at two batch sizes."""
    out = tmp_path_factory.mktemp("report_run") / "run"
    cfg = PipelineConfig(
        run=RunSpec(model="resnet20", data="digits"),
        train=TrainConfig(epochs=3),
        finetune=TrainConfig(epochs=1, lr=0.02),
        bench=BenchConfig(batch_sizes=(1, 4), iterations=6, warmup=1, min_seconds=0),
        threads=1,
    )
    summary = run_pipeline(out, cfg)
    return out, summary


@pytest.fixture(scope="module")
def report(report_run: tuple[Path, dict[str, Any]]) -> Path:
    run, summary = report_run
    return write_html_report(run, summary)


def _figures(run: Path) -> tuple[str, ...]:
    """The figures a report of ``run`` has: the per-layer plot too when the run was profiled per layer."""
    return FIGURES + (("plot-layers",) if RunLayout(run).layers_json.is_file() else ())


@pytest.fixture(scope="module")
def layers_run(report_run: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the run with its ONNX files, profiled per layer (bench/layers.json) by ONNX Runtime."""
    run, _ = report_run
    dest = tmp_path_factory.mktemp("layers_run") / "run"
    copy = Path(shutil.copytree(run, dest, ignore=shutil.ignore_patterns("*.safetensors", "engines")))
    layers_stage(copy, iterations=3, warmup=1, threads=1)
    return copy


def _copy_run(run: Path, dest: Path) -> Path:
    """The run's JSON artifacts only (the report reads nothing else)."""
    return Path(shutil.copytree(run, dest, ignore=shutil.ignore_patterns("*.onnx", "*.safetensors", "engines")))


def test_report_is_self_contained_with_every_section_and_plot(report: Path) -> None:
    from matplotlib import image

    page = report.read_text(encoding="utf-8")
    parsed = _parse(page)
    assert set(SECTIONS) | set(FIGURES) <= parsed.ids
    assert "synthetic-warning" not in parsed.ids  # digits is real data
    assert all(count == 0 for count in parsed.balance.values()), parsed.balance
    assert len(parsed.images) == len(_figures(report.parent))
    for img in parsed.images:
        png = _png(img.get("src"))
        assert png[:8] == PNG_SIGNATURE and img.get("alt")
        with Image.open(io.BytesIO(png)) as pil:
            pil.verify()
        assert image.imread(io.BytesIO(png), format="png").shape[0] > 100
    assert 'src="http' not in page and "<script" not in page.lower() and "url(" not in page
    assert all(link.startswith("#") for link in parsed.links), parsed.links  # in-page anchors only
    assert "Content-Security-Policy" in page


def test_report_tables_match_the_run(report_run: tuple[Path, dict[str, Any]], report: Path) -> None:
    run, summary = report_run
    parsed = _parse(report.read_text(encoding="utf-8"))
    for row in summary_lines(summary):
        assert all(cell in parsed.cells["summary"] for cell in row), row
    plan = json.loads((run / "pruned" / "plan.json").read_text())
    roots = [g["root"] for g in plan["groups"]]
    assert all(r in parsed.cells["pruning"] for r in roots)
    assert parsed.cells["environment"].count("onnxruntime") >= 1  # engine settings and library versions
    for method in ("dense", plan["method"]):
        assert method in parsed.cells["plots"]  # the accuracy-vs-MACs table under its plot


def test_accuracy_points_from_run(report_run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    run, summary = report_run
    points = accuracy_points_from_run(run)
    plan = json.loads((run / "pruned" / "plan.json").read_text())
    assert [(p["method"], p["stage"]) for p in points] == [
        ("dense", "dense"),
        ("cosep", "pruned"),
        ("cosep", "finetuned"),
    ]
    assert [p["top1"] for p in points] == [
        summary["dense_top1"],
        summary["pruned_top1_before_finetune"],
        summary["pruned_top1"],
    ]
    assert points[0]["macs"] == plan["cost_before"]["macs"] and points[1]["macs"] == plan["cost_after"]["macs"]
    copy = _copy_run(run, tmp_path / "run")
    (copy / "baselines").mkdir()
    l1 = {"method": "l1", "macs": plan["cost_after"]["macs"], "top1": 0.9, "stage": "finetuned"}
    (copy / "baselines" / "a.json").write_text(json.dumps([l1]))
    (copy / "baselines" / "b.json").write_text(json.dumps({"points": [{**l1, "method": "random", "top1": None}]}))
    assert [p["method"] for p in accuracy_points_from_run(copy)][3:] == ["l1", "random"]
    (copy / "baselines" / "c.json").write_text(json.dumps([{"method": "emp", "top1": 91.0}]))
    with pytest.raises(CosepError, match=r"c\.json.*method, macs, top1, stage"):
        accuracy_points_from_run(copy)
    (copy / "baselines" / "c.json").write_text(json.dumps([{**l1, "top1": 91.0}]))
    with pytest.raises(CosepError, match="fraction"):
        accuracy_points_from_run(copy)


def test_text_is_escaped_and_synthetic_data_is_flagged(report_run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    run, summary = report_run
    copy = _copy_run(run, tmp_path / "run")
    plan_file = copy / "pruned" / "plan.json"
    plan = json.loads(plan_file.read_text())
    plan["groups"][0]["note"] = EVIL
    plan_file.write_text(json.dumps(plan))
    (copy / "baselines").mkdir()
    (copy / "baselines" / "x.json").write_text(
        json.dumps([{"method": EVIL, "macs": 1000, "top1": 0.5, "stage": "finetuned"}])
    )
    extra = [{"method": "l1 & <b>", "macs": 1000, "top1": 0.6, "stage": "finetuned"}]
    page = write_html_report(copy, {**summary, "synthetic_data": True}, extra_points=extra).read_text()
    assert "<script" not in page and "<b>" not in page
    assert page.count(html.escape(EVIL)) >= 2 and html.escape("l1 & <b>") in page
    parsed = _parse(page)
    assert "synthetic-warning" in parsed.ids and "Synthetic data" in page
    assert EVIL in parsed.cells["pruning"] and EVIL in parsed.cells["plots"]  # shown as text, not run


def test_report_without_a_benchmark(report_run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    run, summary = report_run
    copy = _copy_run(run, tmp_path / "run")
    shutil.rmtree(copy / "bench")
    no_bench = {k: v for k, v in summary.items() if k not in ("latency", "bench_settings")}
    parsed = _parse(write_html_report(copy, no_bench).read_text())
    assert set(SECTIONS) <= parsed.ids and len(parsed.images) == 3  # kept channels, MSS, accuracy
    assert parsed.cells["summary"][-4:] == ["latency", "skipped", "skipped", "benchmark did not run"]


def test_per_layer_section_in_both_reports(
    report_run: tuple[Path, dict[str, Any]], layers_run: Path, tmp_path: Path
) -> None:
    _, summary = report_run
    layers = LayersReport.load(RunLayout(layers_run).layers_json)
    assert layers.settings["dense_file"] == "dense.onnx" and layers.rows
    top = layers.top(15)
    md = write_report(layers_run, summary).read_text()
    assert "## Where time goes (per layer)" in md and "### By kind of layer" in md
    names = [r["name"].replace("|", "\\|") for r in top]  # "dense | pruned" names of pairs, escaped in a table
    assert all(f"`{n}`" in md for n in names), [n for n in names if f"`{n}`" not in md]
    assert all(f"| {k['kind']} |" in md for k in layers.by_kind)
    assert md.index("## Where time goes") > md.index("## Pruning decisions per group")

    parsed = _parse(write_html_report(layers_run, summary).read_text())
    assert {"layers", "plot-layers"} | set(SECTIONS) | set(FIGURES) <= parsed.ids and "#layers" in parsed.links
    assert all(count == 0 for count in parsed.balance.values()), parsed.balance
    assert len(parsed.images) == len(FIGURES) + 1
    with Image.open(io.BytesIO(_png(parsed.images[-1].get("src")))) as plot:  # the per-layer bars come last
        assert plot.height > 250
    cells = parsed.cells["layers"]
    assert all(r["name"] in cells for r in top) and all(k["kind"] in cells for k in layers.by_kind)
    assert f"{100 * top[0]['dense_share']:.1f}%" in cells

    copy = _copy_run(layers_run, tmp_path / "run")  # a layer name that is markup, and unpaired layers
    data = layers.to_json()
    next(r for r in data["rows"] if r["name"] == top[0]["name"])["name"] = EVIL
    data["unmatched"] = {"dense": [EVIL], "pruned": ["ReorderOutput_token_8"]}
    (copy / "bench" / "layers.json").write_text(json.dumps(data))
    page = write_html_report(copy, summary).read_text()
    assert "<script" not in page and html.escape(EVIL) in page
    parsed = _parse(page)
    assert {"unmatched-dense", "unmatched-pruned"} <= parsed.ids and EVIL in parsed.cells["layers"]
    assert "Only in pruned (no counterpart found): `ReorderOutput_token_8`" in write_report(copy, summary).read_text()


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


def _browser(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    browser = _chromium()
    assert browser is not None
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    done = subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"chromium exited {done.returncode}: {done.stderr[-2000:]}"
    return done


@pytest.mark.skipif(
    _chromium() is None, reason="no chromium binary on PATH or at /usr/bin/chromium (apt-get install -y chromium)"
)
def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    url = report.resolve().as_uri()
    shot = tmp_path / "report.png"
    _browser([f"--screenshot={shot}", "--window-size=1280,2400", url], tmp_path / "profile-shot")
    dom = _browser(["--dump-dom", url], tmp_path / "profile-dom").stdout
    parsed = _parse(dom)
    assert set(SECTIONS) | set(FIGURES) <= parsed.ids
    assert len(parsed.images) == len(_figures(report.parent))
    assert all(_png(i.get("src"))[:8] == PNG_SIGNATURE for i in parsed.images)
    assert shot.is_file()
    with Image.open(shot) as img:
        assert img.format == "PNG" and img.width >= 800 and img.height >= 1000
        gray = np.asarray(img.convert("L"), dtype=np.float64)
    assert gray.std() > 10.0 and len(np.unique(gray)) > 16  # a rendered page with text and plots, not a flat fill
    if os.environ.get("COSEP_SCREENSHOT_DIR"):
        target = Path(os.environ["COSEP_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / "report.png")


@pytest.mark.skipif(
    _chromium() is None, reason="no chromium binary on PATH or at /usr/bin/chromium (apt-get install -y chromium)"
)
def test_per_layer_report_renders_in_headless_chromium(
    report_run: tuple[Path, dict[str, Any]], layers_run: Path, tmp_path: Path
) -> None:
    page = write_html_report(layers_run, report_run[1])
    dom = _browser(["--dump-dom", page.resolve().as_uri()], tmp_path / "profile-dom").stdout
    parsed = _parse(dom)
    assert {"layers", "plot-layers"} | set(SECTIONS) <= parsed.ids
    assert len(parsed.images) == len(FIGURES) + 1
    assert all(_png(i.get("src"))[:8] == PNG_SIGNATURE for i in parsed.images)
