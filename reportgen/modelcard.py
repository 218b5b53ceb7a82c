"""The certificate as a model-card section and YAML front matter, merged in place.

Why text surgery instead of parse-and-dump: a model card is a hand-edited file. Re-dumping
its YAML would reorder keys and drop comments, and re-rendering its Markdown would change
what people wrote. So :func:`merge_model_card` only replaces two things it owns: the top-level
``alignment_certificate`` key of the front matter (plus ``base_model`` when the card has none)
and the text between its two HTML comment markers. Everything else stays byte for byte, and a
second merge of the same certificate changes nothing.

A fresh ``model-card.md`` is simply the merge into an empty file, so both paths agree.

Why the merge is careful: the card is the user's and the certificate may be a vendor's. Our
front-matter key is found by parsing the YAML (quoted keys, aliases and keys after it kept),
our markers count only as whole lines outside fenced code (a card that documents them keeps
its text), a leading byte-order mark is kept, a symlinked card is updated where it points,
and text from the certificate cannot leave its table cell or code span. No line of the
user's is ever lost: only our key's lines and the lines between our markers are replaced.
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
from .markdown import code, fmt_metric, fmt_number, md, table, url

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
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    text = text[len(bom):]
    nl = "\r\n" if "\r\n" in text else "\n"
    opening, inner, closing, body = split_front_matter(text, where)
    first_line = (opening + inner + closing).count("\n") + 1  # of the body, for messages
    inner = update_front_matter(inner, cert, link, base_model, nl, where)
    body = replace_section(body, section(cert, link).replace("\n", nl), nl,
                           where, first_line)
    return bom + (opening or "---" + nl) + inner + (closing or "---" + nl) + body


def merge_file(readme: Path, cert: Certificate, link: str = "certificate.html",
               base_model: str | None = None) -> bool:
    """Merge into ``readme`` in place (atomically); True when the file changed. A symlinked
    card stays a link: the file it points at is updated."""
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
    _replace_atomically(Path(os.path.realpath(readme)), merged.encode("utf-8"))
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
    keys = top_level_keys(inner, len(lines), where)
    spans = [span for key, span in keys if key == FRONT_MATTER_KEY]
    if not spans:
        if lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += nl
        lines.append(ours)
    else:
        for first, stop in reversed(spans[1:]):
            del lines[first:stop]
        lines[spans[0][0]:spans[0][1]] = [ours]
    base = base_model or hub_base_model(cert.data)
    if base and "base_model" not in {key for key, _ in keys}:
        lines.insert(0, yaml.safe_dump({"base_model": base}).replace("\n", nl))
    merged = "".join(lines)
    try:
        parsed = yaml.safe_load(merged) or {}
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or _one_line(e)
        raise ModelCardError(f"{where}: the front matter cannot be merged (replacing its "
                             f"{FRONT_MATTER_KEY!r} key gives: {problem}); does another key "
                             "refer to an anchor in it?") from None
    if not isinstance(parsed, dict) or parsed.get(FRONT_MATTER_KEY) != front_matter(cert, link):
        raise ModelCardError(f"{where}: the front matter's layout is unusual and cannot be "
                             f"merged; remove its {FRONT_MATTER_KEY!r} key and merge again")
    return merged


def top_level_keys(inner: str, n_lines: int, where: str) -> list[tuple[str, tuple[int, int]]]:
    """Each top-level key of a block-style front matter and its lines: from the key's line
    up to the next key's, less the blank and comment lines just before that key (those are
    the user's)."""
    node = yaml.compose(inner, Loader=yaml.SafeLoader)
    if node is None:
        return []
    if not isinstance(node, yaml.MappingNode) or node.flow_style:
        raise ModelCardError(f"{where}: the front matter is not a block-style YAML mapping; "
                             "write it as 'key: value' lines to merge into it")
    lines = inner.splitlines()
    starts = [k.start_mark.line for k, _ in node.value] + [n_lines]
    out = []
    for (key, _), first, stop in zip(node.value, starts, starts[1:], strict=False):
        while stop - 1 > first and lines[stop - 1].strip()[:1] in ("", "#"):
            stop -= 1
        out.append((str(key.value) if isinstance(key, yaml.ScalarNode) else "", (first, stop)))
    return out


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


# ----------------------------------------------------------------------------- section


def replace_section(body: str, new: str, nl: str, where: str, first_line: int = 1) -> str:
    """Swap the text between our markers for ``new``, or append it after the body. A marker
    counts only as a whole line outside fenced code."""
    markers, unclosed = scan_markers(body)
    if not markers and unclosed is not None:
        line = first_line + body.count("\n", 0, unclosed)
        raise ModelCardError(f"{where}:{line}: this code fence is never closed, so a section "
                             "added after it would be code; close it and merge again")
    if not markers:
        sep = "" if not body or body.endswith(nl + nl) else nl if body.endswith(nl) else nl + nl
        return body + sep + new + nl
    if [m[0] for m in markers] == [BEGIN, END]:
        return body[:markers[0][1]] + new + body[markers[1][1] + len(END):]
    kinds = [m for m, _ in markers]
    twice = next((i for i, m in enumerate(kinds) if m in kinds[:i]), None)
    marker, at = markers[twice if twice is not None else 0]
    problem = "has no partner" if twice is None else "appears more than once"
    which = "begin" if marker == BEGIN else "end"
    line = first_line + body.count("\n", 0, at)
    raise ModelCardError(f"{where}:{line}: the certificate section's {which} marker {problem}; "
                         "restore or remove it")


_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}(?!.*`)|~{3,})")


def marker_lines(body: str) -> list[tuple[str, int]]:
    """(marker, offset) of each line of ``body`` that is one of our markers, skipping
    fenced code blocks (CommonMark fences of backticks or tildes)."""
    return scan_markers(body)[0]


def scan_markers(body: str) -> tuple[list[tuple[str, int]], int | None]:
    """Our marker lines outside fenced code, and the offset of a fence never closed."""
    out: list[tuple[str, int]] = []
    fence, opened, pos = "", 0, 0
    for line in body.splitlines(keepends=True):
        text = line.rstrip("\r\n")
        if fence:
            stripped = text.strip()
            if (len(text) - len(text.lstrip(" ")) <= 3 and stripped.startswith(fence)
                    and set(stripped) == {fence[0]}):
                fence = ""
        elif m := _FENCE_OPEN.match(text):
            fence, opened = m.group(1), pos
        elif text.rstrip() in (BEGIN, END):
            out.append((text.rstrip(), pos))
        pos += len(line)
    return out, (opened if fence else None)


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
    parts += [f"Full certificate: [{md(link)}]({url(link)}) · certificate JSON SHA-256 "
              f"`{cert.digest}`", END]
    text = "\n".join(parts)
    inner = text.split("\n")[1:-1]
    if marker_lines("\n".join(inner)) or any(_FENCE_OPEN.match(ln) for ln in inner):
        raise ValueError("the model-card section would contain a marker or a code fence")
    return text


def _metrics_table(data: dict[str, Any]) -> list[str]:
    comps = data.get("comparisons") or []
    names = headline_metrics(data)
    if not comps or not names:
        return []
    heads = [md(c["candidate"]) + (" (noise floor)" if c.get("role") == "noise_floor" else "")
             for c in comps]
    rows = [[code(n)] + [fmt_metric((c.get("metrics") or {}).get(n)) for c in comps]
            for n in names]
    return ["### Headline metrics", "", *table(["metric", *heads], rows, numeric_from=1), ""]


def _checks_table(data: dict[str, Any]) -> list[str]:
    checks = data.get("checks") or []
    if not checks:
        return ["The audit defined no checks.", ""]
    rows = [[md(c.get("id", "")), md(c.get("candidate") or ""), code(c.get("metric", "")),
             fmt_number(c.get("value")), md(_condition(c)), f"**{md(c.get('status', ''))}**"]
            for c in checks]
    head = ["check", "model", "metric", "value", "condition", "status"]
    return ["### Checks", "", *table(head, rows, numeric_from=3, numeric_to=4), ""]


def _models_table(data: dict[str, Any]) -> list[str]:
    models = data.get("models") or []
    adapters = any(m.get("adapter") for m in models)  # a column only when one has an adapter
    rows = [[md(m.get("name", "")), md(str(m.get("role", "")).replace("_", " ")),
             _root(m.get("digest"))] + ([_root(m.get("adapter"))] if adapters else [])
            for m in models]
    head = ["model", "role", "digest (OpenSSF model signing v1.0 root)"]
    head += ["adapter digest (merged over that checkpoint)"] if adapters else []
    return ["### Checkpoints", "", *table(head, rows), ""] if rows else []


def _root(digest: dict[str, Any] | None) -> str:
    return code(f"{digest.get('algorithm', '')}:{digest.get('root', '')}") if digest else "—"


def _condition(check: dict[str, Any]) -> str:
    parts = [f"{word} {check[key]}" for key, word in (("fail_if", "fail if"),
                                                      ("warn_if", "warn if")) if check.get(key)]
    return "; ".join(parts) or str(check.get("condition") or "")


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
