"""Refresh the README's screenshots from a rendered certificate (HTML and PDF).

    python docs/screenshots.py out/demo            # after `make demo`

Chromium draws the HTML offline (tests/cdp.py drives it) and poppler's pdftoppm draws one
PDF page; the PNGs are written next to this script, each well under 300 KB.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from cdp import Browser  # noqa: E402

WIDTH = 1200


def element_clip(b: Browser, selector: str, height: int, top_pad: int = 12) -> dict:
    box = b.eval(f"""(function(){{var r=document.querySelector({selector!r})
        .getBoundingClientRect(); return {{x: r.left + window.scrollX,
        y: r.top + window.scrollY}};}})()""")
    return {"x": 0, "y": max(0, box["y"] - top_pad), "width": WIDTH, "height": height}


def html_shots(page: Path, concept: str) -> None:
    """The top of the page, the findings table with the summary under it, one chart drawn
    for every candidate on shared scales, the sparse-feature heatmaps, a run's trajectory,
    the explorer."""
    with tempfile.TemporaryDirectory() as profile, Browser(Path(profile)) as b:
        b.open(page.as_uri(), WIDTH, 900)
        b.wait_for("Array.from(document.querySelectorAll('.chart-canvas')).every("
                   "c => c.querySelector('svg.marks'))")
        time.sleep(0.5)
        b.screenshot(HERE / "certificate-top.png",
                     {"x": 0, "y": 0, "width": WIDTH, "height": 1000})
        b.screenshot(HERE / "certificate-findings.png", element_clip(b, "#summary", 900))
        b.screenshot(HERE / "certificate-section.png",
                     element_clip(b, "#fig-top-concepts-planted-compared", 1000, top_pad=60))
        b.screenshot(HERE / "certificate-sae.png",
                     element_clip(b, "#fig-sae-heatmap-planted-2-compared", 1000))
        series_shot(b)
        b.type_into("#explorer-input", concept)
        time.sleep(0.3)
        b.screenshot(HERE / "certificate-explorer.png", element_clip(b, "#explorer", 1000))


def series_shot(b: Browser) -> None:
    """Both runs' behaviour metrics against the training step (their trajectory chart
    in the Checkpoint series section)."""
    b.screenshot(HERE / "certificate-series.png",
                 element_clip(b, "#fig-series-planted-run-control-run-behavior", 900))


def pdf_shot(pdf: Path, page: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stem = Path(tmp) / "page"
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", str(page), "-l", str(page),
                        "-singlefile", str(pdf), str(stem)], check=True)
        (HERE / "pdf-page.png").write_bytes(stem.with_suffix(".png").read_bytes())


def pdf_page_with(pdf: Path, text: str) -> int:
    """The first page whose text contains ``text``."""
    out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True,
                         capture_output=True, text=True).stdout
    for i, page in enumerate(out.split("\f"), start=1):
        if text in page:
            return i
    raise SystemExit(f"no page of {pdf} contains {text!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="folder with certificate.html and .pdf")
    ap.add_argument("--concept", default="casino", help="concept typed into the explorer")
    ap.add_argument("--pdf-text", default="Most-moved concepts: planted",
                    help="the PDF page shown is the first one with this text")
    args = ap.parse_args()
    html_shots(args.folder.resolve() / "certificate.html", args.concept)
    pdf = args.folder / "certificate.pdf"
    pdf_shot(pdf, pdf_page_with(pdf, args.pdf_text))
    for p in sorted(HERE.glob("*.png")):
        print(f"{p.name}: {p.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
