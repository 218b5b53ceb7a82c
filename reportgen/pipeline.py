"""The audit, stage by stage: spec → models → capture → metrics → verdicts → certificate.

Models are identified (and hashed) before anything heavy runs, so a bad path fails in a
second; each model is then loaded, captured and freed in turn, so memory stays near one
model. Captures are cached, so re-running with other checks runs no forward pass.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import tempfile
from pathlib import Path
from typing import Any

from reportgen.api import Certificate
from reportgen.certificate.document import CertificateBuilder
from reportgen.core.errors import InputError, ModelError
from reportgen.core.progress import Progress
from reportgen.core.records import CheckResult, Comparison, ModelInfo
from reportgen.core.version import __version__
from reportgen.spec.load import LoadedSpec, load_spec
from reportgen.spec.probeset import ProbeSet, build_probes
from reportgen.spec.yamlsrc import resolve_path

#: Libraries every audit uses (models, numbers, views); :func:`libraries_used` adds the ones
#: only some audits bring in.
LIBRARIES = ("torch", "transformers", "tokenizers", "safetensors", "numpy", "scipy",
             "altair", "vl-convert-python", "typst", "jinja2", "pyphen", "pydantic")


def run_audit(source: Any, out: str | Path | None = None, progress: bool | Progress = True,
              write: bool | None = None, sign: str | Path | None = None,
              archive: str | Path | None = None, replace: bool = False) -> Certificate:
    """Run the whole audit. ``out`` (or ``write=True``: the spec's output.dir) writes files;
    ``sign`` (else output.sign) signs them, ``archive`` (else output.archive) files them,
    replacing a filing of the same release only with ``replace``. ``progress``: on stderr or
    not, or a :class:`Progress` of the caller's; every long loop reports through it."""
    prog = progress if isinstance(progress, Progress) else Progress(progress)
    with prog.active():
        return _run(prog, source, out, write, sign, archive, replace)


def _run(prog: Progress, source: Any, out: str | Path | None, write: bool | None,
         sign: str | Path | None, archive: str | Path | None, replace: bool) -> Certificate:
    loaded = load_spec(source, models=True)  # configs and tokenizers too: no weight yet
    out_dir = _output_dir(loaded, out, write)
    key, archive_dir = _sign_and_archive(loaded, out_dir, sign, archive)
    if archive_dir is not None and not replace:
        from reportgen.release.archive import check_not_filed

        check_not_filed(archive_dir, loaded.spec.audit.release)
    if out_dir is not None:
        ensure_writable(out_dir)
    probe = build_probes(loaded)
    models = resolve_models(loaded, prog)
    capture_keys: dict[str, str] = {}
    from reportgen.capture.loading import analysis_device
    from reportgen.capture.run import capture_all

    device = analysis_device(models)
    captures = capture_all(loaded, models, probe, prog, capture_keys, collector_factories(),
                           device)
    prog.say("computing metrics")
    from reportgen.analysis.cache import compare_all_cached  # analysis.compare_all, cached
    from reportgen.analysis.series import series_block
    from reportgen.families.sae.export import attachments as sae_attachments

    comparisons, warnings, extra = compare_all_cached(loaded, models, captures, capture_keys,
                                                      probe, prog, device)
    checks = evaluate_checks(loaded, comparisons)
    cert = CertificateBuilder(
        audit=audit_meta(loaded),
        tool=tool_info(libraries_used(models, extra)),
        spec={"digest": loaded.digest, "content": loaded.normalised},
        models=[model_info(m, captures[m.name]) for m in models],
        probes=probe.infos,
        comparisons=comparisons,
        checks=checks,
        warnings=warnings + _spec_warnings(loaded),
        limitations=limitations(models, probe, loaded.spec.analysis, extra),
        analysis={**analysis_info(loaded, captures[models[0].name]), **extra},
        series=series_block(loaded, comparisons),
    ).certificate(attachments=sae_attachments(captures[models[0].name]), cls=Certificate)
    if out_dir is not None:
        paths = cert.save(out_dir, loaded.spec.output.formats, sign=key)
        prog.say("wrote " + ", ".join(str(p) for p in paths.values()))
        if archive_dir is not None:
            from reportgen.release.archive import add

            added = add(archive_dir, out_dir, replace=replace)
            for line in added.lines() + added.warnings(str(out_dir)):
                prog.say(line)
    prog.say(f"verdict: {cert.verdict}")
    return cert


def _sign_and_archive(loaded: LoadedSpec, out_dir: Path | None, sign: Any, archive: Any
                      ) -> tuple[Path | None, Path | None]:
    """The signing key (checked now, before any model loads) and the archive folder."""
    o = loaded.spec.output
    key = Path(sign) if sign else (resolve_path(o.sign, loaded.base_dir) if o.sign else None)
    arch = Path(archive) if archive else (
        resolve_path(o.archive, loaded.base_dir) if o.archive else None)
    if (key or arch) and out_dir is None:
        raise InputError("output: signing and archiving need an output folder (--out)")
    if key is not None:
        from reportgen.release.signing import load_private_key

        load_private_key(key)
    if arch is not None and "json" not in o.formats:
        raise InputError("output.formats: the archive files certificate.json; add json")
    return key, arch


def _output_dir(loaded: LoadedSpec, out: str | Path | None, write: bool | None) -> Path | None:
    if out is not None:
        return Path(out)
    if write:
        return resolve_path(loaded.spec.output.dir, loaded.base_dir)
    return None


def ensure_writable(folder: Path) -> None:
    """Fail before the expensive work, with one line, when the output cannot be written.
    Creates nothing: a refused audit leaves no empty folder behind (the writer makes it)."""
    from reportgen.core.errors import OutputError

    here = folder
    while not here.exists() and not here.is_symlink() and here.parent != here:
        here = here.parent
    try:
        if not here.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        os.rmdir(tempfile.mkdtemp(prefix=".reportgen-write-test-", dir=here))
    except OSError as e:
        raise OutputError(f"{folder}: output folder is not writable ({e.strerror})") from None


def resolve_models(loaded: LoadedSpec, prog: Progress) -> list:
    """Locate and hash every model (base first), check each candidate against the base."""
    from reportgen.spec.resolve import check_compatible, derive, resolve

    spec = loaded.spec
    prog.say("hashing checkpoints")
    base = resolve("base", "base", spec.models.base.path, loaded.base_dir, "models.base.path",
                   options=spec.models.base)
    out = [base]
    by_name = {"base": base}
    pending = list(enumerate(spec.models.candidates))
    while pending:  # derived variants may name a candidate listed after them
        progressed = False
        for item in list(pending):
            i, c = item
            field = f"models.candidates[{i}]"
            if c.derive is not None:
                src = by_name.get(c.derive.from_)
                if src is None:
                    continue
                rm = derive(c.name, c.role, src, c.derive.quantize, f"{field}.derive")
            else:
                rm = resolve(c.name, c.role, c.path, loaded.base_dir, f"{field}.path", options=c)
            check_compatible(base, rm)
            by_name[c.name] = rm
            out.append(rm)
            pending.remove(item)
            progressed = True
        if not progressed:
            names = ", ".join(c.name for _, c in pending)
            raise ModelError(f"models.candidates: cannot resolve derivations of {names}")
    return out


def evaluate_checks(loaded: LoadedSpec, comparisons: list[Comparison]) -> list[CheckResult]:
    from reportgen.analysis.checks import evaluate, evaluate_series

    spec = loaded.spec
    by_cand = {c.candidate: c for c in comparisons}
    series = {s.name: s for s in loaded.series}
    in_series = {name for s in loaded.series for _, name in s.steps}
    results = []
    for chk in spec.checks:
        targets = [chk.candidate] if chk.candidate else [
            c.name for c in spec.models.candidates
            if c.role == "candidate" and c.name not in in_series] + list(series)
        for cand in targets:
            if cand in series:
                results.append(evaluate_series(chk, series[cand], by_cand))
                continue
            results.append(evaluate(chk.id or chk.metric, chk.metric, cand, by_cand.get(cand),
                                    chk.fail_if, chk.warn_if, chk.description))
    return results


def created_timestamp(spec_created: Any) -> str:
    """audit.created, else $SOURCE_DATE_EPOCH, else now; ISO 8601 in UTC."""
    if isinstance(spec_created, dt.datetime):
        t = spec_created if spec_created.tzinfo else spec_created.replace(tzinfo=dt.timezone.utc)
    elif isinstance(spec_created, dt.date):
        t = dt.datetime(spec_created.year, spec_created.month, spec_created.day,
                        tzinfo=dt.timezone.utc)
    elif os.environ.get("SOURCE_DATE_EPOCH", "").strip():
        raw = os.environ["SOURCE_DATE_EPOCH"].strip()
        try:
            t = dt.datetime.fromtimestamp(int(raw), tz=dt.timezone.utc)
        except ValueError:
            raise InputError(
                f"SOURCE_DATE_EPOCH: expected whole seconds since 1970, got {raw!r}") from None
    else:
        t = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def audit_meta(loaded: LoadedSpec) -> dict[str, Any]:
    a = loaded.spec.audit
    return {"name": a.name, "release": a.release, "created": created_timestamp(a.created),
            "description": a.description}


def libraries_used(models: list, recorded: dict[str, Any] | None = None
                   ) -> tuple[str, ...]:
    """:data:`LIBRARIES` plus what this audit's models and families brought in: peft applies
    an adapter, accelerate places a ``device: auto`` model, and a family that recorded an
    analysis names its own libraries (``Family.libraries``)."""
    from reportgen.families import families

    extra = []
    if any(m.adapter_path is not None for m in models):
        extra.append("peft")
    if any(m.options.device == "auto" for m in models):
        extra.append("accelerate")
    for fam in families():
        if fam.name in (recorded or {}):
            extra += [lib for lib in fam.libraries if lib not in extra]
    return LIBRARIES + tuple(extra)


def tool_info(libraries: tuple[str, ...] = LIBRARIES) -> dict[str, Any]:
    """reportgen's version and the installed version of each library named."""
    from importlib.metadata import PackageNotFoundError, version

    libs = {}
    for lib in libraries:
        try:
            libs[lib] = version(lib)
        except PackageNotFoundError:
            libs[lib] = None
    return {"name": "reportgen", "version": __version__, "libraries": libs}


def model_info(m, cap) -> ModelInfo:
    return ModelInfo(
        name=m.name, role=m.role, kind=m.kind, architecture=m.architecture,
        parameters=cap.parameters, source=m.source, digest=m.digest, layers=cap.n_layers,
        hidden_size=cap.hidden_size, vocab_size=sum(t is not None for t in cap.vocab),
        derived_from=m.derived_from, derivation=m.recipe, adapter=m.adapter_digest,
        dtype=m.options.dtype,
    )


def analysis_info(loaded: LoadedSpec, cap) -> dict[str, Any]:
    a = loaded.spec.analysis
    return {
        "layers": cap.layer_ids,
        "layer_zero": "embedding output (before block 1)",
        "representation": "hidden state of the last non-padding token; also mean over "
                          "non-padding tokens; L2-normalised for cosine",
        "bootstrap": {"resamples": a.bootstrap, "seed": a.seed, "level": 0.95},
        "max_length": a.max_length,
        "neighborhoods": {"k": a.neighborhoods.k, "tokens": a.neighborhoods.tokens,
                          "similarity": "cosine, self excluded",
                          "concept_representation": "last-token hidden state, last layer"},
        "cka": "linear CKA per layer; concepts: last-token states; domains: mean-pooled",
        "weights": a.weights,
        "umap": a.umap,
    }


def _spec_warnings(loaded: LoadedSpec) -> list[str]:
    w = list(loaded.facts.warnings) if loaded.facts is not None else []
    if not loaded.spec.checks:
        w.append("The spec has no checks, so the verdict PASS asserts nothing.")
    if not any(c.role == "noise_floor" for c in loaded.spec.models.candidates):
        w.append("No noise-floor variant: drift is reported without a reference scale.")
    return w


def limitations(models: list, probe: ProbeSet, analysis: Any,
                recorded: dict[str, Any]) -> list[str]:
    """The certificate's limitations: each family's, in page order, then the noise floor's.
    ``recorded``: the certificate's analysis entries the families wrote."""
    from reportgen.core.family import LimitationContext
    from reportgen.families import families

    ctx = LimitationContext(models, probe, analysis, recorded)
    out = [line for f in families() for line in f.limitations(ctx)]
    if any(m.recipe for m in models):
        out.append("The noise floor is a weight round-trip through int8/int4, not a runtime "
                   "quantized kernel; it measures weight-rounding noise only.")
    return out


def collector_factories() -> list:
    """Every family's collector factories, in family order (their order keys the cache)."""
    from reportgen.families import families

    return [c for f in families() for c in f.collectors]
