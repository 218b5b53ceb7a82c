"""Command line: ``reportgen audit | validate | schema | render | metrics``.

Only this module prints. Exit codes: 0 PASS or WARN, 1 FAIL or ERROR, 2 bad spec or input,
3 an internal error (a bug: please report it). Heavy libraries load only inside commands
that need them, so ``--help`` and ``validate`` answer at once.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

from reportgen.core.errors import ReportgenError, SpecError
from reportgen.core.terminal import echo, echo_lines


def _audit(args: argparse.Namespace) -> int:
    from reportgen.pipeline import run_audit

    cert = run_audit(args.spec, out=args.out, progress=not args.quiet, write=True,
                     sign=args.sign, archive=args.archive, replace=args.replace)
    echo_lines(cert.summary())
    return 0 if cert.verdict in ("PASS", "WARN") else 1


def _validate(args: argparse.Namespace) -> int:
    from reportgen.spec.load import load_spec
    from reportgen.spec.probeset import build_probes

    loaded = load_spec(args.spec, models=True)  # configs and tokenizers, never weights
    probe = build_probes(loaded)
    spec = loaded.spec
    for w in loaded.facts.warnings:
        echo(f"warning: {w}", err=True)
    if loaded.facts.chat is not None:
        c = loaded.facts.chat
        echo(f"risk prompts: rendered through the chat template of {c.model!r} ({c.file}, "
             f"sha256 {c.sha256[:12]}…)")
    from reportgen.core.numfmt import plural

    concepts = plural(probe.info.count, "concept") if probe.info else "no concepts"
    echo(f"{args.spec}: OK ({plural(len(spec.models.candidates), 'candidate')}, "
         f"{concepts}, {plural(len(spec.checks), 'check')})")
    return 0


def _plan(args: argparse.Namespace) -> int:
    from reportgen.analysis.plan import plan_audit
    from reportgen.spec.load import load_spec
    from reportgen.spec.probeset import build_probes

    loaded = load_spec(args.spec, models=True)  # configs and tokenizers, never weights
    echo(f"{args.spec}: audit plan, from configs and tokenizers (no weight loaded)")
    echo_lines("\n".join(plan_audit(loaded, build_probes(loaded)).lines()))
    return 0


def _schema(args: argparse.Namespace) -> int:
    from reportgen.spec.types import json_schema

    echo_lines(json.dumps(json_schema(), indent=2))
    return 0


def _render(args: argparse.Namespace) -> int:
    from reportgen.api import Certificate
    from reportgen.certificate.document import OWNED_FOLDERS
    from reportgen.core.untrusted import read_json_beside
    from reportgen.release.write import write_outputs

    cert = Certificate.from_json(args.certificate)
    src = Path(args.certificate)
    folder = src if src.is_dir() else src.parent
    out = Path(args.out) if args.out else folder
    # re-attached to the PDF and copied along: a regular JSON file, never through a link
    sig = folder / "certificate.sig.json"
    signature = None if args.sign else read_json_beside(sig)
    paths = write_outputs(cert, out, args.formats.split(","), signature,
                          page_size=args.page_size, attachments=cert.attachments,
                          owned=OWNED_FOLDERS, sign=Path(args.sign) if args.sign else None)
    for p in paths.values():
        echo(p)
    return 0


def _metrics(args: argparse.Namespace) -> int:
    from reportgen.core.names import registry

    for name in sorted(registry()):
        echo(name)
        echo(f"    {registry()[name].definition}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="reportgen",
        description="Audit a fine-tuned transformer against its base model and issue an "
                    "alignment certificate (HTML, PDF, JSON).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    a = sub.add_parser("audit", help="run an audit from a YAML spec")
    a.add_argument("spec", help="the audit spec (YAML)")
    a.add_argument("--out", help="output folder (default: output.dir from the spec)")
    a.add_argument("--sign", metavar="KEY", help="sign with this Ed25519 private key (PEM)")
    a.add_argument("--archive", metavar="DIR", help="file the certificate in this archive")
    a.add_argument("--replace", action="store_true",
                   help="with --archive: replace a filing of the same release (the earlier "
                        "one is kept in DIR/replaced/)")
    a.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    a.set_defaults(func=_audit)

    v = sub.add_parser("validate", help="check a spec, its probes and its models' configs and "
                       "tokenizers, without loading any weight")
    v.add_argument("spec")
    v.set_defaults(func=_validate)

    pl = sub.add_parser("plan", help="print what an audit will cost (parameters, tokens, scored "
                        "positions, V×V work, disk, peak memory) from configs, no weight")
    pl.add_argument("spec")
    pl.set_defaults(func=_plan)

    s = sub.add_parser("schema", help="print the spec's JSON Schema")
    s.set_defaults(func=_schema)

    r = sub.add_parser("render", help="re-render HTML/PDF from a certificate.json (no model)")
    r.add_argument("certificate", help="certificate.json or the folder holding it")
    r.add_argument("--out", help="output folder (default: next to the certificate)")
    r.add_argument("--formats", default="html,pdf,model-card",
                   help="comma-separated: html,pdf,json,model-card")
    r.add_argument("--page-size", choices=["A4", "Letter"], default="A4",
                   help="printed page size of the PDF (and of the HTML when printed)")
    r.add_argument("--sign", metavar="KEY",
                   help="sign the certificate and the views rendered now with this Ed25519 "
                        "private key (PEM); without it the existing signature is carried "
                        "along, and covers the new views only if they are byte-identical")
    r.set_defaults(func=_render)

    m = sub.add_parser("metrics", help="list every metric a check can name")
    m.set_defaults(func=_metrics)

    from reportgen.cli.integrity import register

    register(sub)  # keygen, verify, modelcard, archive
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except SpecError as e:
        for prob in e.problems:
            echo(f"error: {prob}", err=True)
        n = len(e.problems)
        echo(f"{n} problem{'s' if n != 1 else ''} found; nothing was run.", err=True)
        return 2
    except ReportgenError as e:
        echo(f"error: {e}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        echo("interrupted; nothing was written", err=True)
        return 130
    except Exception as e:  # a bug, not bad input: one line, traceback on request
        if os.environ.get("REPORTGEN_DEBUG"):
            raise
        echo(f"internal error: {type(e).__name__}: {e} "
             "(set REPORTGEN_DEBUG=1 for the traceback)", err=True)
        return 3


if __name__ == "__main__":
    raise SystemExit(main())
