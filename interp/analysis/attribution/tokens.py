"""Token attribution for language models: which tokens of the prompt made the model predict the next one?

Captum's LayerIntegratedGradients on the token embedding (``token_embedding`` of
:class:`~interp.zoo.gpt.GPT`): the embeddings of the prompt are interpolated from those
of a baseline prompt (every token replaced by ``baseline_token``: a space for character
vocabularies, else token 0), the gradients of the target's logit at ``position`` are
integrated along the way and summed over the embedding dimensions, giving one number per
token. Position embeddings are not attributed (they are the same in both prompts).
Tokens after ``position`` get exactly zero: the model is causal.

>>> result = attribute_tokens(run, "ROMEO:\\nWhat say")     # explain the next character
>>> result.target_label, [(t, round(s, 2)) for t, s in zip(result.labels, result.scores.tolist())][-3:]
>>> result.relative_error                                 # completeness, as for images
>>> interp.results.attribution.save_token_attribution(result)   # reports/RUN/attribution/tokens-*.{json,png}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ...errors import InterpError, unknown
from ...hooks import eval_mode, no_new_hooks
from .methods import quiet_captum


@dataclass
class TokenAttribution:
    """One attribution score per prompt token for the prediction at ``position``."""

    tokens: torch.Tensor
    """(T,) token ids of the prompt."""
    labels: list[str]
    """Printable token strings (spaces and newlines made visible)."""
    scores: torch.Tensor
    """(T,) attribution of each token (summed over the embedding)."""
    target: int
    target_label: str
    position: int
    """The position whose next-token prediction is explained."""
    top: list[tuple[str, float]]
    """The model's top-5 next tokens at ``position`` with probabilities."""
    output_difference: float
    """f(prompt) - f(baseline prompt) for the target's logit: the scores should add up to it."""
    baseline_token: str
    steps: int
    run: str | None = None
    prompt: str = ""

    @property
    def relative_error(self) -> float:
        """|sum of scores - output difference| / |output difference| (completeness)."""
        return abs(float(self.scores.sum()) - self.output_difference) / max(abs(self.output_difference), 1e-6)

    def to_dict(self) -> dict:
        return {"run": self.run, "prompt": self.prompt, "tokens": self.tokens.tolist(),
                "labels": self.labels, "scores": self.scores.tolist(), "target": self.target,
                "target_label": self.target_label, "position": self.position,
                "top5": [{"token": t, "prob": p} for t, p in self.top], "output_difference": self.output_difference,
                "relative_error": self.relative_error, "baseline_token": self.baseline_token, "steps": self.steps}

    @classmethod
    def from_dict(cls, d: dict) -> "TokenAttribution":
        return cls(torch.tensor(d["tokens"], dtype=torch.long), d["labels"], torch.tensor(d["scores"]), d["target"],
                   d["target_label"], d["position"], [(t["token"], t["prob"]) for t in d["top5"]],
                   d["output_difference"], d["baseline_token"], d["steps"], d["run"], d.get("prompt", ""))


def _model_and_vocab(run_or_model: Any, vocab: Any):
    from ...data.text import Vocabulary

    if isinstance(run_or_model, nn.Module):
        if vocab is None:
            n = run_or_model.token_embedding.num_embeddings
            vocab = Vocabulary(tuple(str(i) for i in range(n)))
        return run_or_model, vocab if isinstance(vocab, Vocabulary) else Vocabulary(tuple(vocab)), None
    config = getattr(run_or_model, "config", None)
    if config is None or config.task != "language-model":
        name = getattr(run_or_model, "name", type(run_or_model).__name__)
        raise InterpError(f"run {name} is not a language model; token attribution needs a gpt or attn-only run "
                          f"(for images use: interp attribute pixels)")
    from ..language.tokens import run_vocabulary

    return run_or_model.model, run_vocabulary(run_or_model), run_or_model.name


def _token_id(value: int | str, vocab, what: str) -> int:
    """A token id from its string, its printable label (``␣``, ``\\n``) or its id."""
    labels = vocab.labels(list(range(len(vocab))))
    if isinstance(value, str) and value in vocab.tokens:
        return vocab.tokens.index(value)
    if isinstance(value, str) and value in labels:
        return labels.index(value)
    if isinstance(value, str) and not value.isdigit():
        raise unknown(what, value, labels)
    index = int(value)
    if not 0 <= index < len(vocab):
        raise InterpError(f"{what} {index} is out of range: the vocabulary has {len(vocab)} tokens "
                          f"(0-{len(vocab) - 1})")
    return index


def default_baseline_token(vocab) -> int:
    """A space for character vocabularies (the most neutral character), else token 0."""
    return vocab.tokens.index(" ") if " " in vocab.tokens else 0


def attribute_tokens(run_or_model: Any, prompt: str | torch.Tensor, target: int | str | None = None, *,
                     position: int = -1, steps: int = 50, baseline_token: int | str | None = None,
                     vocab: Any = None) -> TokenAttribution:
    """Attribute the model's next-token prediction at ``position`` to the prompt's tokens.

    ``prompt``: text (encoded with the run's vocabulary) or token ids ``(T,)``. ``target``:
    the token to explain (its string or id; default the model's most likely next token).
    For a bare :class:`~interp.zoo.gpt.GPT` pass ``vocab`` (token strings) to use strings.
    """
    from captum.attr import LayerIntegratedGradients

    model, vocab, run_name = _model_and_vocab(run_or_model, vocab)
    if steps < 1:
        raise InterpError(f"steps must be at least 1, got {steps}")
    text = prompt if isinstance(prompt, str) else ""
    ids = vocab.encode(prompt) if isinstance(prompt, str) else torch.as_tensor(prompt, dtype=torch.long).flatten()
    if len(ids) == 0:
        raise InterpError("the prompt is empty; give at least one token")
    context = model.config.block_size
    if len(ids) > context:
        raise InterpError(f"the prompt has {len(ids)} tokens but the model's context is {context}; "
                          f"shorten it to at most {context}")
    T = len(ids)
    pos = position + T if position < 0 else position
    if not 0 <= pos < T:
        raise InterpError(f"position {position} is out of range for a prompt of {T} tokens "
                          f"(0-{T - 1}, or -1 for the last)")
    device = next(model.parameters()).device
    ids = ids.to(device)[None]  # (1, T)
    base_id = default_baseline_token(vocab) if baseline_token is None else _token_id(baseline_token, vocab,
                                                                                      "baseline token")
    base = torch.full_like(ids, base_id)

    def next_token_logits(x: torch.Tensor) -> torch.Tensor:  # (B, T) -> (B, vocab)
        return model(x)[:, pos, :]

    with eval_mode(model), torch.no_grad():
        logits = next_token_logits(ids)[0].float()
        base_logits = next_token_logits(base)[0].float()
    t = int(logits.argmax()) if target is None else _token_id(target, vocab, "target token")
    probs = logits.softmax(0)
    values, indices = probs.topk(min(5, len(probs)))
    with eval_mode(model), no_new_hooks(model), quiet_captum():
        lig = LayerIntegratedGradients(next_token_logits, model.token_embedding)
        attr = lig.attribute(ids, baselines=base, target=t, n_steps=steps)
    scores = attr.detach().sum(-1)[0].float().cpu()
    return TokenAttribution(
        ids[0].cpu(), vocab.labels(ids[0].cpu()), scores, t, vocab.labels([t])[0], pos,
        [(vocab.labels([int(i)])[0], float(v)) for v, i in zip(values, indices)],
        float(logits[t] - base_logits[t]), vocab.labels([base_id])[0], steps, run_name, text)
