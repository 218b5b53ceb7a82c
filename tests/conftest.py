"""Session fixtures: tiny models built in seconds, the demo family, an isolated cache."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def load_example(name: str) -> ModuleType:
    """Import a script from examples/ (they are scripts, not a package)."""
    path = REPO / "examples" / f"{name}.py"
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Captures go to a fresh folder, so tests never read a cache they did not write."""
    path = tmp_path_factory.mktemp("capture-cache")
    os.environ["REPORTGEN_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def builder() -> ModuleType:
    return load_example("build_demo_models")


@pytest.fixture(scope="session")
def tiny_models(builder: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return builder.build_tiny_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def demo_root(builder: ModuleType) -> Path:
    """The demo models, shared with ``make demo`` through the versioned user cache."""
    root = builder.default_root()
    builder.build_gpt2_family(root)
    return root


@pytest.fixture(scope="session")
def demo_cert(demo_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """The demo audit (specs/demo.yaml), every format written, once per session: the demo,
    representation and SAE tests read it (never change it)."""
    import reportgen

    out = tmp_path_factory.mktemp("demo-out")
    return reportgen.audit(REPO / "specs" / "demo.yaml", out=out, progress=False), out


@pytest.fixture(scope="session")
def arch_models(builder: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny Llama, Qwen2, Mistral, Gemma 2, Phi-3 and instruct pairs (tests/archfactory.py)."""
    from archfactory import build_arch_models

    return build_arch_models(tmp_path_factory.mktemp("arch-models"), builder)


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    """Width-32 models: each op is too small to gain from a second thread, and on a busy
    2-core machine waiting for one costs more than the op (the demo builder pins one too)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` are skipped, saying why, where torch sees no CUDA device."""
    gpu = [item for item in items if "gpu" in item.keywords]
    if not gpu:
        return
    import torch

    if torch.cuda.is_available():
        return
    why = pytest.mark.skip(reason=f"needs a CUDA GPU (torch {torch.__version__} sees none)")
    for item in gpu:
        item.add_marker(why)


@pytest.fixture(scope="session")
def tiny_series(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
                ) -> Path:
    """A Trainer-like run folder: ``checkpoint-100`` … ``checkpoint-300``, tiny-gpt2 with
    seeded noise of growing scale added to every weight (tests/seriesfactory.py)."""
    from seriesfactory import build_series

    return build_series(tiny_models["tiny-gpt2"], tmp_path_factory.mktemp("tiny-run"))


@pytest.fixture(scope="session")
def series_cert(tiny_models: dict[str, Path], tiny_series: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The series audit of ``tiny_series`` with its checks (tests/seriesfactory.py), once per
    session: the series audit and view tests read it (copy it to change it; the teardown fails
    when a test changed it)."""
    from seriesfactory import CHECKS, audit_spec

    import reportgen

    tmp = tmp_path_factory.mktemp("series-audit")
    spec = audit_spec(tmp, tiny_models["tiny-gpt2"],
                      {"name": "run", "series": str(tiny_series / "checkpoint-*")}, CHECKS)
    data = reportgen.audit(spec, progress=False).data
    before = json.dumps(data, sort_keys=True)
    yield data
    assert json.dumps(data, sort_keys=True) == before, "a test changed the shared series_cert"


@pytest.fixture(scope="session")
def series_page(series_cert: dict[str, Any]) -> str:
    """``series_cert``'s HTML page, rendered once (a render takes seconds)."""
    from reportgen.api import Certificate
    from reportgen.views.html import render_html

    return render_html(Certificate(series_cert))
