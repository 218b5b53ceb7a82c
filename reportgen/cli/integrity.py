"""Command line for integrity and release work: keygen, verify, modelcard, archive add.

Wired into :mod:`reportgen.cli.commands` by :func:`register`. Like the rest of the CLI, only these
command functions print; the library raises typed errors that ``cli.main`` turns into one
line and exit code 2. ``verify`` returns 1 when anything differs (a tampered certificate or
checkpoint), after printing one line per check so the reader sees exactly what.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from reportgen.core.errors import InputError
from reportgen.core.terminal import echo, echo_lines


def register(subparsers: Any) -> None:
    """Add ``keygen``, ``verify``, ``modelcard`` and ``archive add`` to the top-level parser."""
    k = subparsers.add_parser("keygen", help="make an Ed25519 key pair for signing (PEM)")
    k.add_argument("--out", required=True, metavar="DIR",
                   help="folder for private.pem and public.pem (never overwritten)")
    k.set_defaults(func=_keygen)

    v = subparsers.add_parser(
        "verify", help="check a certificate's signature, its JSON and the checkpoints it names")
    v.add_argument("certificate", metavar="CERT_DIR_OR_PDF",
                   help="an audit output folder, a certificate.json or a certificate PDF")
    v.add_argument("--public-key", metavar="PEM",
                   help="the signer's public key: without it (or --trust-embedded-key) "
                        "verification fails, since anyone can make a key and sign")
    v.add_argument("--trust-embedded-key", action="store_true",
                   help="accept the key embedded in the signature: proves nothing was "
                        "edited after signing, but not who signed")
    v.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                   help="re-hash this checkpoint folder and compare it file by file "
                        "(repeatable)")
    v.add_argument("--adapter", action="append", default=[], metavar="NAME=PATH",
                   help="re-hash the adapter folder of a model with an adapter (repeatable); "
                        "such a model is verified only with both --model and --adapter")
    v.set_defaults(func=_verify)

    m = subparsers.add_parser("modelcard", help="print or merge the model-card section")
    m.add_argument("certificate", metavar="CERT",
                   help="certificate.json or the folder holding it")
    m.add_argument("--merge", metavar="README", help="update this model card in place")
    m.add_argument("--link", default="certificate.html",
                   help="where the card links to the full certificate "
                        "(default: certificate.html)")
    m.add_argument("--base-model", metavar="HUB_ID",
                   help="base_model for the front matter (default: the base model's source "
                        "when it is a hub id); an existing base_model is kept")
    m.set_defaults(func=_modelcard)

    a = subparsers.add_parser("archive", help="the release archive")
    asub = a.add_subparsers(dest="archive_command", required=True, metavar="ACTION")
    add = asub.add_parser("add", help="file a certificate under its release and rebuild "
                                      "index.html")
    add.add_argument("archive", metavar="ARCHIVE_DIR")
    add.add_argument("certificate", metavar="CERT_DIR")
    add.add_argument("--replace", action="store_true",
                     help="file it even if its release is already filed from another "
                          "certificate (the earlier filing is kept in ARCHIVE_DIR/replaced/)")
    add.set_defaults(func=_archive_add)


def _keygen(args: argparse.Namespace) -> int:
    from reportgen.release.signing import generate_keypair

    pair = generate_keypair(Path(args.out))
    echo(f"private key: {pair.private} (keep it secret; sign with --sign {pair.private})")
    echo(f"public key:  {pair.public} (give it to whoever verifies)")
    echo(f"key id:      {pair.keyid}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from reportgen.release.verify import verify

    models = parse_models(args.model)
    adapters = parse_models(args.adapter, "--adapter")
    key = Path(args.public_key) if args.public_key else None
    report = verify(Path(args.certificate), key, models, adapters, args.trust_embedded_key)
    echo(f"verifying {report.source}")
    for finding in report.findings:
        echo(finding.line())
    if report.ok:
        parts = ["the signature is valid and the certificate is unchanged"]
        if report.views:
            parts.append(f"{'its view shows' if report.views == 1 else 'its views show'} it")
        folders = [_plural(n, f"{what} folder") for n, what in
                   ((len(models), "checkpoint"), (len(adapters), "adapter")) if n]
        if folders:
            parts.append(f"{' and '.join(folders)} match it")
        said = ", ".join(parts[:-1]) + ", and " + parts[-1] if len(parts) > 1 else parts[0]
        unchecked = "" if report.signer_checked else "; who signed was NOT checked"
        echo(f"verified: {said}{unchecked}")
        return 0
    echo(f"verification failed: {_plural(len(report.failures), 'problem')}")
    return 1


def parse_models(items: list[str], flag: str = "--model") -> dict[str, Path]:
    """``NAME=PATH`` arguments as a dict; one name may appear once."""
    out: dict[str, Path] = {}
    what = "adapter" if flag == "--adapter" else "checkpoint"
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InputError(f"{flag} {item}: expected NAME=PATH (a model name from the "
                             f"certificate and its {what} folder)")
        if name in out:
            raise InputError(f"{flag} {name}: given twice")
        out[name] = Path(path)
    return out


def _modelcard(args: argparse.Namespace) -> int:
    from reportgen.api import Certificate
    from reportgen.views.modelcard import merge_file, render_model_card

    cert = Certificate.from_json(args.certificate)
    if not args.merge:
        echo_lines(render_model_card(cert, args.link, args.base_model), end="")
        return 0
    changed = merge_file(Path(args.merge), cert, args.link, args.base_model)
    echo(f"{args.merge}: {'updated' if changed else 'already up to date'}")
    return 0


def _archive_add(args: argparse.Namespace) -> int:
    from reportgen.release.archive import add

    added = add(Path(args.archive), Path(args.certificate), replace=args.replace)
    for line in added.lines():
        echo(line)
    for line in added.warnings("the certificate's folder"):
        echo(line, err=True)
    return 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
