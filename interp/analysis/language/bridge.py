"""The TransformerLens adapter of our ``gpt`` / ``attn-only`` models, and the shape of their heads.

Every language analysis reads a model through a TransformerLens ``TransformerBridge``
(TransformerLens's native architecture booted with our shapes, our weights loaded into
it), so hook names are TransformerLens's (``blocks.0.attn.hook_pattern``). The weight
conversion itself lives with the model family (:func:`interp.zoo.gpt.bridge_state_dict`);
this module turns a model, a run or a run name into a bridge.

>>> bridge = to_bridge("models/attn-only")
>>> bridge.OV  # FactoredMatrix [n_layers, n_heads, d_model, d_model]
>>> as_bridge(bridge) is bridge
True
>>> head_labels(2, 2)
['L0H0', 'L0H1', 'L1H0', 'L1H1']
"""

from __future__ import annotations

from typing import Any

from ...errors import InterpError
from ...zoo.gpt import GPT, bridge_config, bridge_state_dict
from ...zoo.imported import HFCausalLM


def _as_gpt(model_or_run: Any) -> GPT | HFCausalLM:
    if isinstance(model_or_run, (GPT, HFCausalLM)):
        return model_or_run
    model = getattr(model_or_run, "model", None)  # a Run
    if isinstance(model, (GPT, HFCausalLM)):
        return model
    if isinstance(model_or_run, str) or hasattr(model_or_run, "__fspath__"):
        from ...runs import load_run

        return _as_gpt(load_run(model_or_run))
    name = getattr(getattr(model_or_run, "config", None), "model", type(model_or_run).__name__)
    raise InterpError(f"{name!r} is not a transformer run; transformer analyses need a `gpt` or `attn-only` run "
                      f"(train one with: interp train attn-only)")


def to_bridge(model_or_run: Any, *, fold_ln: bool = False):
    """A new TransformerLens ``TransformerBridge`` with our weights, in eval mode.

    ``model_or_run``: a :class:`~interp.zoo.gpt.GPT`, a :class:`~interp.runs.Run` or a
    run name/path. ``fold_ln=True`` applies TransformerLens's weight processing
    (LayerNorm folded into the following weights, writing weights and the unembedding
    centred), as HookedTransformer did by default; logits then change by a per-position
    constant only. Use it for weight-based circuit analysis (OV, QK, composition).

    >>> bridge = to_bridge("models/attn-only")
    >>> logits, cache = bridge.run_with_cache(tokens)
    """
    from transformer_lens.model_bridge import TransformerBridge

    model = _as_gpt(model_or_run)
    param = next(model.parameters())
    if isinstance(model, HFCausalLM):
        bridge = _boot_hf(model, param.device)
    else:
        bridge = TransformerBridge.boot_native(bridge_config(model.config), device=param.device)
        bridge.load_state_dict(bridge_state_dict(model), strict=True)
    bridge.eval()  # boot_native returns training mode; TL's patching and logit lens refuse it
    if fold_ln:
        bridge.process_weights(fold_ln=True, center_writing_weights=True, center_unembed=True,
                               fold_value_biases=True)
    return bridge


def reload_bridge(bridge, model_or_run: Any):
    """``bridge`` (from :func:`to_bridge` of a model of the same shapes, not weight-folded) with the weights
    of another model: a checkpoint series reads many weights through one bridge instead of booting one each.

    >>> bridge = reload_bridge(bridge, load_snapshot(run, 120))
    """
    model = _as_gpt(model_or_run)
    if isinstance(model, HFCausalLM):
        return to_bridge(model)
    bridge.load_state_dict(bridge_state_dict(model), strict=True)
    return bridge.eval()


def _boot_hf(model: HFCausalLM, device):
    """An imported Hugging Face model through TransformerLens's own adapter for its architecture.

    The architecture is read from the run's ``hf/`` folder (config and tokenizer, saved by
    ``interp import``), the weights are a copy of the model's (no download).
    """
    from transformer_lens.model_bridge import TransformerBridge

    import copy

    tokenizer = model.tokenizer  # a clear error for a model without its run folder
    # A copy: boot_transformers wraps the modules it is given in place (and leaves hooks on them),
    # and fold_ln rewrites their weights, which would change the run's own model for every later
    # analysis (measured: logits moved by 0.04 after a folded bridge of a 2-layer GPT-2).
    return TransformerBridge.boot_transformers(str(model.folder), hf_model=copy.deepcopy(model.hf),
                                               tokenizer=tokenizer, device=device)


def as_bridge(model_or_run: Any, **kwargs):
    """A bridge as is, or :func:`to_bridge` of a GPT, run or run name.

    >>> as_bridge(run, fold_ln=True).OV
    """
    if hasattr(model_or_run, "run_with_cache") and hasattr(model_or_run, "cfg"):
        return model_or_run
    return to_bridge(model_or_run, **kwargs)


def bridge_hook_count(bridge) -> int:
    """Hooks on the bridge's hook points (what ``run_with_hooks`` adds); 0 after every analysis.

    :func:`interp.hooks.hook_count` of a whole bridge also counts the pre-hooks the bridge
    wires into itself on its first forward pass, which are part of its machinery.
    """
    from ...hooks import hook_count

    return sum(hook_count(point) for point in bridge.hook_dict.values())


def head_labels(n_layers: int, n_heads: int) -> list[str]:
    """``L{layer}H{head}`` for every head, layer by layer.

    >>> head_labels(1, 3)
    ['L0H0', 'L0H1', 'L0H2']
    """
    return [f"L{layer}H{head}" for layer in range(n_layers) for head in range(n_heads)]


def check_heads(n_layers: int, n_heads: int, layers: list[int] | None = None,
                heads: list[int] | None = None) -> tuple[list[int], list[int]]:
    """Validate layer and head indices (``None``: all); an :class:`InterpError` says the valid range.

    >>> check_heads(2, 4, [1])
    ([1], [0, 1, 2, 3])
    """
    layers = list(range(n_layers)) if layers is None else list(layers)
    heads = list(range(n_heads)) if heads is None else list(heads)
    for layer in layers:
        if not 0 <= layer < n_layers:
            raise InterpError(f"unknown layer {layer}: the model has {n_layers} layer{'s' * (n_layers > 1)} "
                              f"(0-{n_layers - 1})")
    for head in heads:
        if not 0 <= head < n_heads:
            raise InterpError(f"unknown head {head}: each layer has {n_heads} head{'s' * (n_heads > 1)} "
                              f"(0-{n_heads - 1})")
    return layers, heads
