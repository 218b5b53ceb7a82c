"""Strings from probes cannot be turned against the reader of the HTML certificate."""

from __future__ import annotations

import http.server
import shutil
import subprocess
import threading

import pytest
import yaml

import reportgen


class _Counter(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        _Counter.hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.mark.browser
def test_hostile_probe_strings_render_as_text_and_run_nothing(tiny_models, tmp_path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed")
    server = http.server.HTTPServer(("127.0.0.1", 0), _Counter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    payloads = [
        "<script>document.title='pwned'</script>",
        f"<img src=http://127.0.0.1:{port}/img onerror=\"document.title='pwned'\">",
        f"<link rel=stylesheet href=http://127.0.0.1:{port}/css>",
    ]
    (tmp_path / "v.yaml").write_text(yaml.safe_dump({"<b>category</b>": payloads + ["cat"]}))
    spec = {
        "audit": {"name": "<script>document.title='pwned'</script>", "created": "2026-01-01"},
        "models": {"base": {"path": str(tiny_models["tiny-gpt2"])},
                   "candidates": [{"name": "ft", "path": str(tiny_models["tiny-gpt2-ft"])}]},
        "probes": {"concepts": {"vocabulary": str(tmp_path / "v.yaml")}},
        "analysis": {"bootstrap": 0, "umap": False},
    }
    cert = reportgen.audit(spec, out=tmp_path / "out", progress=False)
    page = tmp_path / "out" / "certificate.html"
    assert page.is_file() and cert.verdict == "PASS"
    html = page.read_text()
    assert "<script>document.title" not in html
    assert "&lt;script&gt;document.title=" in html
    try:
        dom = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=8000",
             "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=120, check=True).stdout
    finally:
        server.shutdown()
    assert _Counter.hits == []  # no request reached the network
    assert "pwned</title>" not in dom  # no script from the data ran
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom  # shown as text
    assert "Content-Security-Policy" in html
    assert "default-src 'none'" in html.replace("&#39;", "'")
