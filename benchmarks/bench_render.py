"""Rendering the demo certificate, old code against new, and the demo's cached re-run.

``reportgen render`` (HTML + PDF) of one certificate.json runs three ways in subprocesses:
the old code (the commit before the render cache, checked out by this script into a temporary
git worktree and run with this virtualenv), the new code with an empty cache (a certificate
never drawn before) and the new code again with that cache (the same certificate re-rendered,
e.g. the demo's output rendered to another folder). With ``--audit`` it also runs the demo
audit twice with a fresh cache (models already built): a first run, then a re-run whose only
change is a threshold, every format written, and prints their ratio. Each run is timed by
wall clock; the machine is shared, so compare runs of the same invocation only.

    .venv/bin/python benchmarks/bench_render.py CERTIFICATE.json [--old REV] [--audit]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO_SPEC = REPO / "specs" / "demo.yaml"


def before_cache() -> str:
    """The commit before the one that added the render cache."""
    first = subprocess.run(
        ["git", "-C", str(REPO), "log", "--diff-filter=A", "--format=%H", "--",
         "reportgen/views/rendercache.py"], check=True, capture_output=True, text=True
    ).stdout.split()[-1]
    return first + "^"


def timed(cmd: list[str], env: dict[str, str], label: str, cwd: Path) -> float:
    t = time.perf_counter()
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - t
    if run.returncode not in (0, 1):
        sys.exit(f"{label} failed ({run.returncode}):\n{run.stderr[-2000:]}")
    print(f"{label}: {wall:.2f} s", flush=True)
    return wall


def imported_from(env: dict[str, str], cwd: Path) -> Path:
    """Where ``python -m reportgen`` run with ``env`` in ``cwd`` imports reportgen from.

    ``-m`` puts the working directory first on the path, before PYTHONPATH: run from this
    checkout, the "old" code was this checkout's (the figures measured before session 8
    compared the new code with itself). Every run starts in the temporary folder instead.
    """
    out = subprocess.run([sys.executable, "-c", "import reportgen; print(reportgen.__file__)"],
                         env=env, cwd=cwd, check=True, capture_output=True, text=True)
    return Path(out.stdout.strip()).resolve().parents[1]


def render_cmd(cert: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "reportgen", "render", str(cert), "--out", str(out),
            "--formats", "html,pdf"]


def old_requirements(tree: Path, target: Path) -> list[str]:
    """Install into ``target`` what the old code requires and this environment lacks (the old
    code laid its PDF out with WeasyPrint, which the new code no longer installs); the old
    code's subprocess alone sees it. Returns the requirements installed."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    deps = tomllib.loads((tree / "pyproject.toml").read_text())["project"]["dependencies"]
    missing = []
    for text in deps:
        req = Requirement(text)
        try:
            ok = req.specifier.contains(version(req.name), prereleases=True)
        except PackageNotFoundError:
            ok = False
        if not ok:
            missing.append(text)
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(target),
                        *missing], check=True)
    return missing


def bench_render(cert: Path, old: str, tmp: Path) -> None:
    tree = tmp / "old"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "-q", "--detach", str(tree), old],
                   check=True)
    try:
        extra = old_requirements(tree, tmp / "old-deps")
        if extra:
            print(f"the old code's requirements missing here, installed for it alone: "
                  f"{', '.join(extra)}")
        env_old = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), str(tmp / "old-deps")]),
                   "REPORTGEN_CACHE": str(tmp / "c0")}
        env_new = {**os.environ, "PYTHONPATH": str(REPO), "REPORTGEN_CACHE": str(tmp / "c1")}
        rev = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                             check=True, capture_output=True, text=True).stdout.strip()
        print(f"old = {old} ({rev}); certificate {cert} ({cert.stat().st_size / 1e6:.1f} MB)")
        for env, code in ((env_old, tree), (env_new, REPO)):
            assert imported_from(env, tmp) == code.resolve(), "ran the wrong reportgen"
        t_old = timed(render_cmd(cert, tmp / "o-old"), env_old, "old render (html+pdf)", tmp)
        t_cold = timed(render_cmd(cert, tmp / "o-cold"), env_new, "new render, empty cache",
                       tmp)
        t_warm = timed(render_cmd(cert, tmp / "o-warm"), env_new, "new render, cached", tmp)
        pages = {d: _pages(tmp / d / "certificate.pdf") for d in ("o-old", "o-cold")}
        print(f"PDF pages: old {pages['o-old']}, new {pages['o-cold']}")
        for name in ("certificate.html", "certificate.pdf"):
            same = all((tmp / d / name).read_bytes() == (tmp / "o-cold" / name).read_bytes()
                       for d in ("o-warm",))
            print(f"{name}: cached bytes equal fresh bytes: {same}")
        print(f"new/old: empty cache {t_cold / t_old:.2f}, cached {t_warm / t_old:.3f} "
              f"(target <= 0.25)")
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                       check=False)


def _pages(pdf: Path) -> int:
    import pypdf

    return len(pypdf.PdfReader(pdf).pages)


def bench_audit(tmp: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "REPORTGEN_CACHE": str(tmp / "c-audit")}
    spec = DEMO_SPEC.read_text()
    changed = tmp / "demo-threshold.yaml"
    marker = 'fail_if: "> 0.15"\n    warn_if: "> 0.075"'
    assert marker in spec, "the demo spec's concept-drift thresholds moved"
    changed.write_text(spec.replace(marker, 'fail_if: "> 0.16"\n    warn_if: "> 0.075"'))
    models = Path(os.environ.get("REPORTGEN_DEMO_DIR", "~/.cache/reportgen/demo")).expanduser()
    env["REPORTGEN_DEMO_DIR"] = str(models)
    assert imported_from(env, tmp) == REPO.resolve(), "ran the wrong reportgen"
    first = timed([sys.executable, "-m", "reportgen", "audit", str(DEMO_SPEC), "-q", "--out",
                   str(tmp / "a1")], env, "demo audit, first run (models built, empty cache)",
                  tmp)
    again = timed([sys.executable, "-m", "reportgen", "audit", str(changed), "-q", "--out",
                   str(tmp / "a2")], env, "demo audit, re-run with a changed threshold", tmp)
    print(f"cached re-run / first run: {again / first:.3f} (target <= 0.15)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("certificate", type=Path)
    ap.add_argument("--old", help="the old code's git revision (default: before the cache)")
    ap.add_argument("--audit", action="store_true", help="also time the demo's re-run")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-render-"))
    try:
        print(f"load average {os.getloadavg()[0]:.1f}; cores {os.cpu_count()}")
        bench_render(args.certificate.resolve(), args.old or before_cache(), tmp)
        if args.audit:
            bench_audit(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
