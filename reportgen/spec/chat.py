"""Chat templates: risk prompts read the way an instruct model reads a user's message.

``probes.chat_template`` (``false`` by default, ``true`` or ``auto``) renders every risk prompt
as one user turn through a model's chat template, with the assistant-turn prefix after it
(``add_generation_prompt``); the safe and unsafe continuations are then scored as the
assistant's answer. Base and candidates must read the *same* text to be compared, so one
template renders for all of them: the first candidate's (in spec order) that has one, else the
base's. A base without a template reads the candidate's markers as plain text, which is the
question a certificate asks ("what does the base make of the prompt the chat model sees?").
``true`` refuses an audit where no model has a template; ``auto`` renders when one has.
Domain texts are documents, not messages, and stay raw.

The template is Jinja from the model folder (``chat_template.jinja``, else the
``chat_template`` of ``tokenizer_config.json``), rendered only by transformers' sandboxed
``apply_chat_template``, never run as Python; both files are part of the model's digest.
Rendered text goes through the same tokenization as every other probe text (special tokens
added by the tokenizer), so a leading BOS the template writes is dropped when the tokenizer
adds it anyway; the result must be exactly the template's own token ids, or the audit is
refused rather than scored on a text the model would never see.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reportgen.core.errors import InputError, Problem

if TYPE_CHECKING:
    from reportgen.spec.messages import Ctx

FIELD = ("probes", "chat_template")


@dataclass(frozen=True)
class ChatTemplate:
    """The template that renders an audit's risk prompts, and where it came from."""

    model: str  # the spec's name of the model whose template it is
    folder: Path
    file: str  # chat_template.jinja | tokenizer_config.json
    sha256: str  # of the template's text

    def record(self) -> dict[str, str]:
        """What the certificate says (no local path)."""
        return {"model": self.model, "file": self.file, "sha256": self.sha256}


def read_template(folder: Path) -> tuple[str, str] | None:
    """(template text, file it came from), or None when the folder has no chat template.
    A list of named templates (``[{name, template}]``) contributes its ``default`` one."""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8"), jinja.name
    try:
        cfg = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    t = cfg.get("chat_template") if isinstance(cfg, dict) else None
    if isinstance(t, list):
        t = next((x.get("template") for x in t
                  if isinstance(x, dict) and x.get("name") == "default"), None)
    return (t, "tokenizer_config.json") if isinstance(t, str) and t.strip() else None


def choose(raw: dict, reads: list[Any], ctx: Ctx, out: list[Problem]) -> ChatTemplate | None:
    """The template the spec asks for (``reads``: the models read by validation, base first),
    or None; a ``true`` that cannot be met is a located problem in ``out``."""
    probes = raw.get("probes") if isinstance(raw.get("probes"), dict) else {}
    setting = probes.get("chat_template", False)
    if setting is False or not reads:
        return None
    if not probes.get("risk"):
        if setting is True:
            out.append(ctx.problem(FIELD, "true, but there are no risk prompts to render "
                                          "(probes.risk is empty)"))
        return None
    decoders = [m for m in reads if m.kind == "causal-lm"]
    if len(decoders) < len(reads):
        if setting is True:
            other = next(m for m in reads if m.kind != "causal-lm")
            out.append(ctx.problem(FIELD, f"true, but {other.name!r} is a {other.kind}; chat "
                                          "templates apply to decoders (causal LMs)"))
        return None
    base = ("models", "base")
    for m in [*(m for m in reads if m.at != base), *(m for m in reads if m.at == base)]:
        found = read_template(m.folder)
        if found is not None:
            return ChatTemplate(m.name, m.folder, found[1],
                                hashlib.sha256(found[0].encode("utf-8")).hexdigest())
    if setting is True:
        names = ", ".join(repr(m.name) for m in reads)
        out.append(ctx.problem(FIELD, f"true, but no model has a chat template ({names}: no "
                                      "chat_template.jinja and no chat_template in "
                                      "tokenizer_config.json)"))
    return None


def differences(chosen: ChatTemplate | None, reads: list[Any]) -> list[str]:
    """A warning naming the models whose own chat template is not the one that renders the
    prompts (one template renders for all; a model tuned on another format reads them as
    text it was not tuned for, which the behaviour numbers then reflect)."""
    if chosen is None:
        return []
    other = []
    for m in reads:
        found = read_template(m.folder)
        if found is not None and hashlib.sha256(
                found[0].encode("utf-8")).hexdigest() != chosen.sha256:
            other.append(repr(m.name))
    if not other:
        return []
    return [f"probes.chat_template: the risk prompts are rendered through the chat template "
            f"of {chosen.model!r} for every model, but {', '.join(other)} "
            f"{'has' if len(other) == 1 else 'have'} a different one of "
            f"{'its' if len(other) == 1 else 'their'} own; "
            f"{'it reads' if len(other) == 1 else 'they read'} the prompts in a format "
            f"{'it was' if len(other) == 1 else 'they were'} not tuned for"]


def render(template: ChatTemplate, prompts: list[str], where: str) -> list[str]:
    """Each prompt as one user turn plus the assistant-turn prefix, as text whose tokenization
    (special tokens added) is the template's own token ids. ``where`` prefixes a refusal."""
    import transformers as tf

    tok = tf.AutoTokenizer.from_pretrained(template.folder)
    return [_render_one(tok, p, template, where) for p in prompts]


def _render_one(tok: Any, prompt: str, template: ChatTemplate, where: str) -> str:
    turn = [{"role": "user", "content": prompt}]
    text = tok.apply_chat_template(turn, tokenize=False, add_generation_prompt=True)
    want = list(tok.apply_chat_template(turn, tokenize=True, add_generation_prompt=True)
                ["input_ids"])
    bos = tok.bos_token
    for candidate in (text, text[len(bos):] if bos and text.startswith(bos) else None):
        if candidate is not None and list(tok(candidate)["input_ids"]) == want:
            return candidate
    raise InputError(f"{where}: the chat template of {template.model!r} renders a prompt "
                     "that its tokenizer does not read back as the template's tokens "
                     f"(prompt {prompt[:40]!r}); the prompts cannot be scored as the model "
                     "reads them")
