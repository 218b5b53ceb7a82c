"""Templates and built-in probes travel inside the wheel, not only in the checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_carries_templates_and_probes(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "-q", "-w", str(tmp_path), str(REPO)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    wheel = next(tmp_path.glob("reportgen-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "reportgen/_data/templates/certificate.html.j2" in names
    assert "reportgen/_data/probes/concepts.yaml" in names
    assert "reportgen/certificate/schemas/certificate.schema.json" in names
    templates = {p.name for p in (REPO / "templates").iterdir()}
    assert {n.rsplit("/", 1)[-1] for n in names if "_data/templates/" in n} == templates
