"""ganlab report: one self-contained HTML page per run and per sweep, checked in a real browser
(headless Chromium driven by Playwright)."""
import re
from pathlib import Path

from ganlab.cli import main
from ganlab.report import report
from ganlab.run import train
from ganlab.sweep import sweep

from helpers import tiny_config

RUN_SECTIONS = ["summary", "samples", "curves", "metrics", "alarms", "config"]


def open_page(browser, path: Path, shot: Path) -> dict:
    """Load a report file; return its images' state, section ids, console errors, requests."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    images = page.eval_on_selector_all(
        "img", "els => els.map(e => ({ok: e.complete && e.naturalWidth > 0, src: e.src.slice(0, 22)}))")
    sections = page.eval_on_selector_all("h2", "els => els.map(e => e.id)")
    text = page.inner_text("body")
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    return {"images": images, "sections": sections, "errors": errors, "text": text,
            "requests": [u for u in requests if not u.startswith(("file:", "data:"))]}


def check_self_contained(path: Path):
    html = path.read_text()
    assert not re.search(r'(src|href)\s*=\s*["\'](https?:|//)', html)  # nothing fetched
    assert "<script" not in html


def test_a_run_page_in_the_browser(browser, tmp_path):
    run = tmp_path / "ring"
    train(tiny_config("train.iterations=40", "train.eval_every=10", "train.sample_every=10"), run)
    path = report(run)
    assert path == run / "report.html"
    check_self_contained(path)
    seen = open_page(browser, path, tmp_path / "run.png")
    assert seen["errors"] == [] and seen["requests"] == []
    assert len(seen["images"]) >= 6 and all(i["ok"] for i in seen["images"]), seen["images"]
    assert all(i["src"].startswith("data:image/png") for i in seen["images"])
    assert [s for s in RUN_SECTIONS if s not in seen["sections"]] == []
    assert "modes_captured" in seen["text"] and "iteration 40" in seen["text"]
    assert (tmp_path / "run.png").stat().st_size > 10_000  # the screenshot


def test_metric_floors_and_alarms_on_the_page(browser, tmp_path, tiny_mnist):
    from ganlab.config import load_config
    cfg = load_config("mnist-dcgan", [f"data.path={tiny_mnist}", "data.batch_size=8",
                                      "train.iterations=4", "train.eval_every=2",
                                      "train.eval_samples=200", "train.sample_every=2",
                                      "train.progress=false", "train.alarms={patience: 1}"])
    run = tmp_path / "mnist"
    train(cfg, run)
    seen = open_page(browser, report(run), tmp_path / "mnist.png")
    assert seen["errors"] == [] and all(i["ok"] for i in seen["images"])
    assert "real-vs-real floor" in seen["text"] and "class_kl" in seen["text"]
    assert "some digits are missing" in seen["text"]  # the class-KL alarm, explained


def test_a_sweep_page_and_the_commands(browser, tmp_path, capsys):
    tiny = ["train.iterations=12", "train.eval_every=6", "train.checkpoint_every=6",
            "train.sample_every=6", "data.args={n: 512}", "data.batch_size=32",
            "model.generator.args={hidden: 8, layers: 1, norm: batch}",
            "model.discriminator.args={hidden: 8, layers: 1}"]
    out = tmp_path / "sw"
    logs = []
    sweep("ring8", 2, ["optim.g.lr=1e-3,2e-3"], out, jobs=2, overrides=tiny, log=logs.append)
    assert (out / "report.html").is_file() and any("report:" in line for line in logs)
    check_self_contained(out / "report.html")
    seen = open_page(browser, out / "report.html", tmp_path / "sweep.png")
    assert seen["errors"] == [] and seen["images"] and all(i["ok"] for i in seen["images"])
    assert {"summary", "comparison", "runs"} <= set(seen["sections"])
    assert "Benjamini-Hochberg" in seen["text"] and "optim.g.lr=2e-3" in seen["text"]
    assert "95% CI" in seen["text"]
    code = main(["report", str(out / "optim.g.lr=1e-3" / "seed0"), "--out",
                 str(tmp_path / "one.html")])
    assert code == 0 and (tmp_path / "one.html").is_file()
    code = main(["report", str(tmp_path), "--out", str(tmp_path / "x.html")])
    assert code == 2 and "not a ganlab run directory" in capsys.readouterr().err


def test_train_writes_the_report_at_the_end(tmp_path, capsys):
    code = main(["train", "ring8", "--out", str(tmp_path / "r"), "--set", "train.iterations=3",
                 "--set", "data.args={n: 512}", "--set", "data.batch_size=32"])
    assert code == 0 and (tmp_path / "r" / "report.html").is_file()
    assert f"report:      {tmp_path / 'r' / 'report.html'}" in capsys.readouterr().out
