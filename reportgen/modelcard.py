"""The certificate as a model-card section and YAML front matter, merged in place.

Why text surgery instead of parse-and-dump: a model card is a hand-edited file. Re-dumping
its YAML would reorder keys and drop comments, and re-rendering its Markdown would change
what people wrote. So :func:`merge_model_card` only replaces two things it owns: the top-level
``alignment_certificate`` key of the front matter (plus ``base_model`` when the card has none)
and the text between its two HTML comment markers. Everything else stays byte for byte, and a
second merge of the same certificate changes nothing.

A fresh ``model-card.md`` is simply the merge into an empty file, so both paths agree.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .certificate import Certificate
from .errors import InputError

FRONT_MATTER_KEY = "alignment_certificate"
BEGIN = "<!-- reportgen:alignment-certificate:begin -->"
END = "<!-- reportgen:alignment-certificate:end -->"
HEADLINE = (
    "concepts.cosine_distance.mean", "concepts.cosine_distance.noise_floor_ratio",
    "embeddings.cosine_distance.mean", "embeddings.cosine_distance.noise_floor_ratio",
    "behavior.misalignment_score",
)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_FENCE = re.compile(r"^---[ \t]*\r?\n")
_CLOSE = re.compile(r"^(---|\.\.\.)[ \t]*(\r?\n|$)", re.M)


class ModelCardError(InputError):
    """A model card that cannot be merged into (bad YAML, a lone marker, unreadable)."""


# ----------------------------------------------------------------------------- public


def render_model_card(cert: Certificate, link: str = "certificate.html",
                      base_model: str | None = None) -> str:
    """The text of ``model-card.md``: front matter and the certificate section."""
    return merge_model_card("", cert, link, base_model)


def merge_model_card(text: str, cert: Certificate, link: str = "certificate.html",
                     base_model: str | None = None, where: str = "model card") -> str:
    """``text`` with our front-matter key and section replaced (or added); rest untouched."""
    nl = "\r\n" if "\r\n" in text else "\n"
    opening, inner, closing, body = split_front_matter(text, where)
    first_line = (opening + inner + closing).count("\n") + 1  # of the body, for messages
    inner = update_front_matter(inner, cert, link, base_model, nl, where)
    body = replace_section(body, section(cert, link).replace("\n", nl), nl,
                           where, first_line)
    return (opening or "---" + nl) + inner + (closing or "---" + nl) + body


def merge_file(readme: Path, cert: Certificate, link: str = "certificate.html",
               base_model: str | None = None) -> bool:
    """Merge into ``readme`` in place (atomically); True when the file changed."""
    readme = Path(readme)
    try:
        raw = readme.read_bytes()
    except FileNotFoundError:
        raise ModelCardError(f"{readme}: no such file; to start a model card, copy "
                             "model-card.md from the audit's output folder") from None
    except OSError as e:
        raise ModelCardError(f"{readme}: cannot read the model card ({e.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelCardError(f"{readme}: not UTF-8 text") from None
    merged = merge_model_card(text, cert, link, base_model, where=str(readme))
    if merged == text:
        return False
    _replace_atomically(readme, merged.encode("utf-8"))
    return True


def headline_metrics(data: dict[str, Any]) -> list[str]:
    """The fixed headline metrics the certificate has, then every metric a check names."""
    present = {n for c in data.get("comparisons") or [] for n in c.get("metrics") or {}}
    names = [n for n in HEADLINE if n in present]
    names += [c["metric"] for c in data.get("checks") or [] if c.get("metric") in present]
    return list(dict.fromkeys(names))


def hub_base_model(data: dict[str, Any]) -> str | None:
    """The base model's source when it reads like a hub id (``org/name``), else None."""
    for m in data.get("models") or []:
        source = str(m.get("source") or "")
        if m.get("role") == "base" and _HUB_ID.match(source) and ".." not in source:
            return source
    return None


# ------------------------------------------------------------------------ front matter


def split_front_matter(text: str, where: str) -> tuple[str, str, str, str]:
    """(opening fence, YAML inside, closing fence, body); fences empty when there is none."""
    fence = _FENCE.match(text)
    if not fence:
        return "", "", "", text
    close = _CLOSE.search(text, fence.end())
    if not close:
        raise ModelCardError(f"{where}: the front matter opened by '---' on line 1 is "
                             "never closed")
    inner = text[fence.end():close.start()]
    try:
        parsed = yaml.safe_load(inner)
    except yaml.YAMLError as e:
        raise ModelCardError(f"{where}: the front matter is not valid YAML "
                             f"({_one_line(e)})") from None
    if parsed is not None and not isinstance(parsed, dict):
        raise ModelCardError(f"{where}: the front matter is not a YAML mapping")
    return fence.group(0), inner, close.group(0), text[close.end():]


def update_front_matter(inner: str, cert: Certificate, link: str, base_model: str | None,
                        nl: str, where: str) -> str:
    """Replace or append our top-level key; add ``base_model`` only when there is none."""
    ours = front_matter_block(cert, link).replace("\n", nl)
    lines = inner.splitlines(keepends=True)
    start = _top_level_key(lines, FRONT_MATTER_KEY)
    if start is None:
        if lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += nl
        lines.append(ours)
    else:
        end = start + 1
        while end < len(lines) and lines[end][:1] in (" ", "\t", "-"):
            end += 1
        lines[start:end] = [ours]
    base = base_model or hub_base_model(cert.data)
    if base and _top_level_key(lines, "base_model") is None:
        lines.insert(0, yaml.safe_dump({"base_model": base}).replace("\n", nl))
    merged = "".join(lines)
    parsed = yaml.safe_load(merged) or {}
    if not isinstance(parsed, dict) or parsed.get(FRONT_MATTER_KEY) != front_matter(cert, link):
        raise ModelCardError(f"{where}: the front matter's layout is unusual and cannot be "
                             f"merged; remove its {FRONT_MATTER_KEY!r} key and merge again")
    return merged


def front_matter(cert: Certificate, link: str) -> dict[str, Any]:
    """The fields under ``alignment_certificate``: what was certified, verdict, digest."""
    audit = cert.data.get("audit") or {}
    tool = cert.data.get("tool") or {}
    return {
        "verdict": cert.verdict,
        "digest": f"sha256:{cert.digest}",
        "audit": audit.get("name"),
        "release": audit.get("release"),
        "created": audit.get("created"),
        "certificate": link,
        "tool": f"{tool.get('name', 'reportgen')} {tool.get('version', '')}".strip(),
    }


def front_matter_block(cert: Certificate, link: str) -> str:
    return yaml.safe_dump({FRONT_MATTER_KEY: front_matter(cert, link)}, sort_keys=False,
                          allow_unicode=True, default_flow_style=False, width=10_000)


def _top_level_key(lines: list[str], key: str) -> int | None:
    pattern = re.compile(rf"^{re.escape(key)}\s*:")
    return next((i for i, ln in enumerate(lines) if pattern.match(ln)), None)


# ----------------------------------------------------------------------------- section


def replace_section(body: str, new: str, nl: str, where: str, first_line: int = 1) -> str:
    """Swap the text between our markers for ``new``, or append it after the body."""
    begin, end = body.find(BEGIN), body.find(END)
    if begin >= 0 and end > begin:
        return body[:begin] + new + body[end + len(END):]
    if begin >= 0 or end >= 0:
        which, at = ("begin", begin) if begin >= 0 else ("end", end)
        line = first_line + body.count("\n", 0, at)
        raise ModelCardError(f"{where}:{line}: the certificate section's {which} marker has "
                             "no partner; restore or remove it")
    sep = "" if not body or body.endswith(nl + nl) else nl if body.endswith(nl) else nl + nl
    return body + sep + new + nl


def section(cert: Certificate, link: str) -> str:
    """The Markdown section between the markers (no trailing newline)."""
    data = cert.data
    audit = data.get("audit") or {}
    tool = data.get("tool") or {}
    facts = [md(audit.get("name") or "audit")]
    if audit.get("release"):
        facts.append(f"release {md(audit['release'])}")
    facts += [f"audited {md(audit.get('created') or '—')}",
              f"{md(tool.get('name', 'reportgen'))} {md(tool.get('version', ''))}".strip()]
    parts = [BEGIN, "## Alignment certificate", "",
             f"**Verdict: {md(cert.verdict)}** · " + " · ".join(facts), ""]
    parts += _metrics_table(data) + _checks_table(data) + _models_table(data)
    parts += [f"Full certificate: [{md(link)}]({_url(link)}) · certificate JSON SHA-256 "
              f"`{cert.digest}`", END]
    return "\n".join(parts)


def _metrics_table(data: dict[str, Any]) -> list[str]:
    comps = data.get("comparisons") or []
    names = headline_metrics(data)
    if not comps or not names:
        return []
    heads = [md(c["candidate"]) + (" (noise floor)" if c.get("role") == "noise_floor" else "")
             for c in comps]
    rows = [[f"`{n}`"] + [fmt_metric((c.get("metrics") or {}).get(n)) for c in comps]
            for n in names]
    return ["### Headline metrics", "", *_table(["metric", *heads], rows, numeric_from=1), ""]


def _checks_table(data: dict[str, Any]) -> list[str]:
    checks = data.get("checks") or []
    if not checks:
        return ["The audit defined no checks.", ""]
    rows = [[md(c.get("id", "")), md(c.get("candidate") or ""), f"`{c.get('metric', '')}`",
             fmt_number(c.get("value")), md(_condition(c)), f"**{md(c.get('status', ''))}**"]
            for c in checks]
    head = ["check", "model", "metric", "value", "condition", "status"]
    return ["### Checks", "", *_table(head, rows, numeric_from=3, numeric_to=4), ""]


def _models_table(data: dict[str, Any]) -> list[str]:
    models = data.get("models") or []
    adapters = any(m.get("adapter") for m in models)  # a column only when one has an adapter
    rows = [[md(m.get("name", "")), md(str(m.get("role", "")).replace("_", " ")),
             _root(m.get("digest"))] + ([_root(m.get("adapter"))] if adapters else [])
            for m in models]
    head = ["model", "role", "digest (OpenSSF model signing v1.0 root)"]
    head += ["adapter digest (merged over that checkpoint)"] if adapters else []
    return ["### Checkpoints", "", *_table(head, rows), ""] if rows else []


def _root(digest: dict[str, Any] | None) -> str:
    return f"`{digest.get('algorithm', '')}:{digest.get('root', '')}`" if digest else "—"


def _table(head: list[str], rows: list[list[str]], numeric_from: int | None = None,
           numeric_to: int | None = None) -> list[str]:
    def align(i: int) -> str:
        hi = len(head) if numeric_to is None else numeric_to
        return "---:" if numeric_from is not None and numeric_from <= i < hi else "---"

    return ["| " + " | ".join(head) + " |",
            "|" + "|".join(align(i) for i in range(len(head))) + "|",
            *("| " + " | ".join(r) + " |" for r in rows)]


def _condition(check: dict[str, Any]) -> str:
    parts = [f"{word} {check[key]}" for key, word in (("fail_if", "fail if"),
                                                      ("warn_if", "warn if")) if check.get(key)]
    return "; ".join(parts) or str(check.get("condition") or "")


# ------------------------------------------------------------------------- formatting


def fmt_number(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return md(str(v))
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def fmt_metric(m: dict[str, Any] | None) -> str:
    """A metric cell: '57.8×', '87.5 %', '0.1342', or '—' when it was not computed."""
    if not m or m.get("value") is None:
        return "—"
    unit, v = m.get("unit", ""), m["value"]
    if unit == "×":
        return f"{v:.1f}×" if abs(v) < 100 else f"{v:,.0f}×"
    if unit == "share":
        return f"{100 * v:.1f} %"
    return f"{fmt_number(v)} {md(unit)}".strip()


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def md(text: Any) -> str:
    """Text safe in a Markdown table cell: no HTML, no emphasis, no cell breaks."""
    s = " ".join(str(text).split())
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", s)


def _url(link: str) -> str:
    return link.replace(" ", "%20").replace("(", "%28").replace(")", "%29").replace("<", "%3C")


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


def _replace_atomically(path: Path, data: bytes) -> None:
    """Write next to ``path`` and rename over it, keeping its permissions."""
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
