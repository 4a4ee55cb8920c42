"""Compute what the transformer pages need (``ensure``), and the transformer stage of ``interp demo``.

Every analysis of :mod:`interp.analysis.language` is saved through
:mod:`interp.results.language` into the run's ``transformer/`` folder: head scores, loss
by position, training dynamics, attention, logit lens and direct logit attribution, a
text sample, circuit scores and zero- and mean-ablation.

>>> paths = save_transformer_results(interp.load_run("attn-only"))   # {"heads": .../heads.json, ...}
>>> build_report(run)    # calls ensure(ctx): only the missing results are computed
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InterpError
from ..results import language as saved

DEMO_RUN = "demo-induction"
DEMO_SETTINGS = {"steps_per_epoch": "10", "batch_size": "32", "lr": "3e-3", "grad_clip": "1.0"}
"""The P6 recipe (benchmarks/induction.py): head scores every 10 steps, the phase change in ~200 steps."""

DEFAULT_TEXT_PROMPT = "First Citizen:\nBefore we proceed any further, hear me speak."
SAMPLE_TOKENS = 300
SAMPLE_TEMPERATURE = 0.8


def transformer_dir(run) -> Path:
    """Where a run's transformer results go: ``reports/RUN/transformer``."""
    return run.report_dir() / saved.FOLDER


def _default_prompt(run) -> str | None:
    """The prompt of the attention and lens figures: a Shakespeare line for text runs whose vocabulary
    has its characters (else ``None``: no figure), ``None`` for token-task runs (an induction probe)."""
    from ..analysis.language.tokens import run_vocabulary

    vocab = run_vocabulary(run)
    if not vocab.is_char:
        return None
    text = DEFAULT_TEXT_PROMPT[:run.config.model_config["block_size"]]
    return text if set(text) <= set(vocab.tokens) else None


def _is_saved(folder: Path, stem: str, kind: str) -> bool:
    """A readable ``STEM.json`` of ``kind`` is there (files from before the store, without a kind, are not)."""
    file = folder / f"{stem}.json"
    try:
        return json.loads(file.read_text()).get("kind") == kind
    except (OSError, ValueError, AttributeError):
        return False


def save_transformer_results(run, *, prompt: str | None = None, out_dir: Path | None = None, missing_only: bool = False,
                             seed: int = 0, log=None) -> dict[str, Path]:
    """Every transformer analysis of a run, saved as JSON + PNG (for reports and the demo).

    Head scores, loss by position, training dynamics (when recorded), attention, logit
    lens and direct logit attribution on ``prompt`` (token-task runs: an induction probe;
    text runs: a Shakespeare line when its characters are in the vocabulary), a text
    sample (text runs), circuit scores, and zero- and mean-ablation. ``missing_only``:
    keep the results already saved. Returns name -> JSON path of what was saved now.

    >>> save_transformer_results(run)["heads"]
    PosixPath('reports/attn-only/transformer/heads.json')
    """
    from ..analysis.language.circuits import circuit_scores
    from ..analysis.language.heads import attention_patterns, head_scores, training_dynamics
    from ..analysis.language.lens import direct_logit_attribution, logit_lens
    from ..analysis.language.patching import ablate_heads
    from ..analysis.language.position import loss_by_position
    from ..analysis.language.tokens import prompt_tokens, run_vocabulary, sample_text

    out = Path(out_dir) if out_dir is not None else transformer_dir(run)
    paths: dict[str, Path] = {}

    def wanted(stem: str, kind: str) -> bool:
        return not (missing_only and _is_saved(out, stem, kind))

    if log and not all(_is_saved(out, s, k) for s, k in (("heads", "head-scores"), ("circuits", "circuit-scores"))):
        log("transformer analyses (heads, attention, lens, composition, ablation) ...")
    if wanted("heads", "head-scores"):
        paths["heads"] = saved.save_head_scores(head_scores(run, seed=seed), out)
    if wanted("position_loss", "position-loss"):
        try:
            paths["position_loss"] = saved.save_position_loss(loss_by_position(run, seed=seed), out)
        except InterpError:  # the run's text file has moved: skip this one
            pass
    if any("head_scores" in r for r in run.metrics) and wanted("dynamics", "training-dynamics"):
        paths["dynamics"] = saved.save_training_dynamics(training_dynamics(run), out)
    vocab = run_vocabulary(run)
    if vocab.is_char and wanted("sample", "sample"):
        sample = sample_text(run, n_tokens=SAMPLE_TOKENS, temperature=SAMPLE_TEMPERATURE, seed=seed)
        paths["sample"] = saved.save_sample(sample, out)
    prompt = prompt if prompt is not None else _default_prompt(run)
    if prompt is not None or not vocab.is_char:
        tokens = prompt_tokens(run, prompt, seed=seed)
        if wanted("attention", "attention"):
            paths["attention"] = saved.save_attention(attention_patterns(run, tokens), out)
        if len(tokens) > 1:
            if wanted("lens", "lens"):
                paths["lens"] = saved.save_logit_lens(logit_lens(run, tokens), out)
            if wanted("dla", "direct-logit-attribution"):
                paths["dla"] = saved.save_direct_logit_attribution(direct_logit_attribution(run, tokens), out)
    if wanted("circuits", "circuit-scores"):
        paths["circuits"] = saved.save_circuit_scores(circuit_scores(run, seed=seed), out)
    for kind in ("zero", "mean"):
        if wanted(f"ablation_{kind}", "ablation"):
            paths[f"ablation_{kind}"] = saved.save_ablation(ablate_heads(run, kind=kind, seed=seed), out)
    return paths


def ensure(ctx) -> None:
    """The report's transformer results under ``ctx.root/transformer``: those missing are computed,
    those saved (by the CLI or an earlier report, with whatever settings) are kept."""
    if ctx.run.config.task != "language-model":
        return
    save_transformer_results(ctx.run, out_dir=ctx.root / saved.FOLDER, missing_only=True, seed=ctx.seed,
                             log=ctx.log)


def demo_stage(ctx) -> None:
    """``interp demo``: a 2-layer attention-only transformer learns induction; its heads are analysed."""
    from ..terminal import format_summary
    from ..training.loop import train

    run = train("attn-only", "induction", name=DEMO_RUN, overwrite=True, device=ctx.device, progress=ctx.progress,
                epochs=20 if ctx.quick else 30, overrides=DEMO_SETTINGS, log=None)
    print(format_summary(run))
    out = transformer_dir(run)
    save_transformer_results(run, out_dir=out)
    scores = saved.load_head_scores(out)
    best = scores.induction[1].max().item()
    print(f"  best layer-1 induction score {best:.2f} (layer-0 previous-token {scores.prev_token[0].max().item():.2f}); "
          f"plots in {out}")
    ctx.outputs["induction run"] = run.path
    ctx.outputs["transformer plots"] = out
    ctx.extra["induction_score"] = best
