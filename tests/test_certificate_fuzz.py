"""A certificate fuzzer over render, verify, archive add and modelcard (issue 15).

Hypothesis mutates a real certificate the way a hostile vendor might (hostile strings,
wrong types, missing and extra keys, extreme numbers, paths in ``saved_as``, broken bytes)
and runs every command that reads one. Whatever it makes: no internal error (exit 0, 1 or
2 only), no raw control character on the terminal, no file written outside the command's
target, no partial output on refusal, and a rendered page never shows a verdict other than
the one its checks give. Examples are bounded and derandomized so ``make test`` stays fast
and repeatable.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from certfactory import make_certificate
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from reportgen.api import Certificate
from reportgen.certificate.schema import CertificateError, parse_certificate
from reportgen.cli import commands as cli
from reportgen.core.records import overall_verdict
from reportgen.views.modelcard import BEGIN, END, merge_model_card

HOSTILE = [
    "\x1b[2K\x1b[1A", "\x1b[8m", "\r", "\n", "\u202e", "\x00", "`", "``", "|", "<script>",
    "</script><script>alert(1)</script>", BEGIN, END, "---", "```", "~~~", "${HOME}", "*_[x]_*",
    "../../../etc/passwd", "/etc/hostname", "trained-sae/../../escape", "trained-sae/x",
    "PASS", "FAIL", "", " ", "\ufeff", "\u2028", "ß\u0301", "&amp;",
]
LONG = "a" * 5000  # one string longer than any page expects
HOSTILE.append(LONG)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.sampled_from(HOSTILE),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(HOSTILE[:12]) | st.text(
        max_size=8), inner, max_size=3)), max_leaves=8)


def _small_certificate() -> dict[str, Any]:
    return make_certificate(n_concepts=8, noise_floor=False)


BASE = _small_certificate()


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


PATHS = _paths(BASE)[1:]
# Fields whose values reach a file name, a terminal, a page or a link most directly.
HOT = [p for p in PATHS if p[:2] in (("audit", "release"), ("audit", "name"))
       or p[-1] in ("name", "metric", "candidate", "status", "verdict", "message", "id", "root",
                    "algorithm", "unit", "definition")]


@st.composite
def mutations(draw: st.DrawFn) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    typed = draw(st.booleans())  # keep every type: most then pass the schema and get drawn
    kinds = ["string", "number"] if typed else ["string", "hostile", "value", "delete", "extra"]
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(HOT) | st.sampled_from(PATHS))
        parent = _at(data, path[:-1])
        if parent is None:
            continue
        key = path[-1]
        if isinstance(parent, dict) and key not in parent:
            continue
        if isinstance(parent, list) and not (isinstance(key, int) and key < len(parent)):
            continue
        kind = draw(st.sampled_from(kinds))
        leaf = parent[key]
        if kind == "string":
            if isinstance(leaf, str):
                parent[key] = draw(st.sampled_from(HOSTILE) | st.text(max_size=30))
        elif kind == "number":
            if isinstance(leaf, bool) or not isinstance(leaf, (int, float)):
                continue
            extreme = [0, -1, 10**30, -(10**30)] if isinstance(leaf, int) else [
                0.0, -0.0, 1e308, -1e308, 5e-324, 1e-12, -3.5]
            parent[key] = draw(st.sampled_from(extreme))
        elif kind == "hostile":
            parent[key] = draw(st.sampled_from(HOSTILE))
        elif kind == "value":
            parent[key] = draw(VALUES)
        elif kind == "delete":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(HOSTILE))] = draw(VALUES)
    if draw(st.booleans()):  # attach a dictionary path, some of them hostile
        rel = draw(st.sampled_from(["trained-sae/layer2", "trained-sae/../../escape",
                                    "/tmp/escape", "trained-sae/a/../../../b", "x/layer2"]))
        data.setdefault("analysis", {})["sae"] = {"layers": {"2": {"saved_as": rel}}}
    statuses = [c.get("status") for c in data.get("checks") or [] if isinstance(c, dict)]
    if draw(st.integers(0, 3)) and all(s in ("PASS", "WARN", "FAIL", "ERROR") for s in statuses):
        data["verdict"] = overall_verdict(statuses)  # so that more reach the renderers
    return data


def _at(node: Any, path: tuple) -> Any:
    for key in path:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return None
    return node if isinstance(node, (dict, list)) else None


def _tree(root: Path) -> dict[str, bytes | None]:
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
README = "---\nlicense: mit\n---\n# My model\n\nWords of my own.\n"


def _expected_verdict(data: Any) -> str | None:
    checks = data.get("checks") if isinstance(data, dict) else None
    if not isinstance(checks, list):
        return None
    return overall_verdict([c.get("status") for c in checks if isinstance(c, dict)])


# ``make test`` replays the same bounded set; REPORTGEN_FUZZ_EXAMPLES=500 explores afresh.
EXPLORE = int(os.environ.get("REPORTGEN_FUZZ_EXAMPLES", "0"))


@settings(max_examples=EXPLORE or 25, deadline=None, derandomize=not EXPLORE, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=mutations(), views=st.booleans(), raw_edit=st.sampled_from(
    ["", "", "", "ascii", "truncate", "trailing"]))
def test_no_command_fails_internally_or_writes_outside_its_target(data, views, raw_edit):
    raw = json.dumps(data, indent=2, ensure_ascii=raw_edit == "ascii")
    if raw_edit == "truncate":
        raw = raw[: len(raw) // 2]
    elif raw_edit == "trailing":
        raw += "\n{}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        src = root / "vendor"
        (src / "trained-sae" / "layer2").mkdir(parents=True)
        (src / "trained-sae" / "layer2" / "cfg.json").write_text("{}")
        (src / "certificate.json").write_text(raw, encoding="utf-8")
        if views:
            (src / "certificate.html").write_text("<script>alert('vendor')</script>")
            (src / "model-card.md").write_text("vendor card\n")
        (root / "card").mkdir()
        (root / "card" / "README.md").write_text(README)
        before = _tree(root)
        targets = {"render": root / "rendered", "archive": root / "archive",
                   "merge": root / "card" / "README.md"}
        runs = {
            "render": ["render", str(src), "--out", str(targets["render"]),
                       "--formats", "json,html,model-card"],
            "verify": ["verify", str(src)],
            "archive": ["archive", "add", str(targets["archive"]), str(src)],
            "modelcard": ["modelcard", str(src)],
            "merge": ["modelcard", str(src), "--merge", str(targets["merge"])],
        }
        for name, argv in runs.items():
            code, out, err = _run(argv)
            event(f"{name} exit {code}")
            assert code in (0, 1, 2), (name, err)
            assert "internal error" not in err and "Traceback" not in err, (name, err)
            assert not RAW_CONTROL.search(out + err), (name, out + err)
            if code == 2 and name in ("render", "archive"):
                assert not targets[name].exists(), (name, err)  # no partial output
            if code == 2 and name == "merge":
                assert targets["merge"].read_text() == README
        after = _tree(root)
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        allowed = ("rendered", "archive", "card/README.md")
        assert all(k.split("/")[0] in allowed[:2] or k == allowed[2] for k in changed), changed
        page = targets["render"] / "certificate.html"
        if page.exists():  # drawn: the banner is the verdict its checks give
            expected = _expected_verdict(data).lower()
            assert f'class="verdict verdict-{expected}"' in page.read_text()
        merged = targets["merge"].read_text()
        assert "Words of my own.\n" in merged and "license: mit\n" in merged


@settings(max_examples=EXPLORE or 40, deadline=None, derandomize=not EXPLORE, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=mutations())
def test_the_loader_accepts_only_what_the_schema_and_verdict_allow(data):
    """Every mutation either loads, with the verdict its checks give, or is refused with a
    CertificateError naming the source; nothing else escapes."""
    raw = json.dumps(data).encode("utf-8")
    try:
        loaded = parse_certificate(raw, "vendor.json")
    except CertificateError as e:
        assert str(e).startswith("vendor.json: ") and "\n" not in str(e)
        return
    assert loaded["verdict"] == _expected_verdict(loaded)
    assert Certificate(loaded).to_json()  # serialisable as the views need it


LINES = st.sampled_from([
    "# Title", "Some words.", "", "```", "```python", "~~~", "    indented code", BEGIN, END,
    "key: value", "- item", "<!-- a comment -->", "| a | b |", "\ufeffbom", "  ",
])


@settings(max_examples=EXPLORE or 60, deadline=None, derandomize=not EXPLORE, database=None)
@given(lines=st.lists(LINES, max_size=12), front=st.lists(st.sampled_from([
    "license: mit", "tags: [a, b]", "# a comment", "base_model: gpt2", "x: &a 1\ny: *a",
    "'quoted': 2", "-dash: 3", "nested:\n  k: v", "alignment_certificate: {old: 1}"]),
    max_size=5, unique=True),
       bom=st.booleans(), crlf=st.booleans())
def test_a_merge_never_loses_a_users_line(lines, front, bom, crlf):
    """Markers appear only inside fences here (else they would be ours to replace): every
    line of the card survives, in order, and a second merge changes nothing."""
    body, fence = [], ""
    for line in lines:
        if line in (BEGIN, END) and not fence:
            continue
        if line.startswith(("```", "~~~")):
            fence = "" if fence and line.startswith(fence[:3]) and line.strip() == fence[:3] \
                else fence or line[:3]
        body.append(line)
    if fence:
        body.append(fence[:3])
    nl = "\r\n" if crlf else "\n"
    head = ("---" + nl + nl.join(front).replace("\n", nl) + nl + "---" + nl) if front else ""
    text = ("\ufeff" if bom else "") + head + nl.join(body) + (nl if body else "")
    cert = Certificate(BASE)
    merged = merge_model_card(text, cert)
    assert merge_model_card(merged, cert) == merged
    kept = iter(merged.removeprefix("\ufeff").splitlines())
    ours = "alignment_certificate: {old: 1}"  # the one line that is ours to replace
    assert all(any(line == m for m in kept) for line in text.removeprefix("\ufeff").splitlines()
               if line not in ("---", ours)), (text, merged)


def test_comparison_json_is_asdict() -> None:
    """The certificate builder's shallow conversion of a comparison (its tables are not
    deep-copied) is ``dataclasses.asdict``: a field added to Comparison cannot go missing."""
    from dataclasses import asdict

    from certfactory import make_builder

    from reportgen.certificate.document import _comparison_dict

    comps = make_builder().comparisons
    assert comps and any(c.tables for c in comps)
    for c in comps:
        assert _comparison_dict(c) == asdict(c)
