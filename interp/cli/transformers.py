"""Transformer commands: sample, attention, heads, lens, ablate, composition.

Each loads a ``gpt`` or ``attn-only`` run, calls one analysis function of
:mod:`interp.analysis.language` (through TransformerLens), saves its JSON + PNG under
``reports/RUN/transformer/`` (:mod:`interp.results.language`) and prints a summary, or
with ``--json`` the result as JSON with where it was saved.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..terminal import table
from .common import (add_device, add_json, add_run, add_seed, escaped_text, float_in, int_in, load_run_announced,
                     print_json)

EPILOG_TRAIN = (
    "training:\n"
    "  interp train gpt --text ../shared/data/tinyshakespeare.txt     # 3 layers x 96, 1500 steps\n"
    "  interp train gpt --text ../shared/data/tinyshakespeare.txt --batch-size 32 --lr 4e-3 \\\n"
    "      --epochs 10 --set steps_per_epoch=150 --set grad_clip=1 --set precision=bf16   # the P4 recipe\n"
    "  interp train attn-only --epochs 30 --set steps_per_epoch=10 --batch-size 32   # induction task;\n"
    "      head scores are recorded after every epoch (interp heads plots them over training)\n"
)


def register(sub, common) -> None:
    def parser(name, help, description, examples):
        p = sub.add_parser(name, parents=[common], help=help, description=description,
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           epilog="examples:\n" + examples + "\n" + EPILOG_TRAIN)
        add_run(p)
        add_device(p)
        add_json(p)
        return p

    p = parser("sample", "generate text from a language-model run",
               "Sample tokens from a trained gpt or attn-only run, starting from a prompt.",
               "  interp sample --run gpt --prompt 'ROMEO:' --tokens 300\n"
               "  interp sample --run gpt --temperature 0.8 --seed 1\n"
               "  interp sample --run gpt --prompt 'ROMEO:' --tokens 50 --json   # {\"kind\": \"sample\", \"text\": ...}\n")
    p.add_argument("--prompt", type=escaped_text,
                   help="text to continue (characters of the training text; \\n and \\t stand for a newline and a "
                        "tab); default: a newline")
    p.add_argument("--tokens", type=int_in(0, 100_000), default=200, help="tokens to generate (default 200)")
    p.add_argument("--temperature", type=float_in(0, 100), default=1.0, help="softmax temperature; 0 = greedy (default 1.0)")
    add_seed(p)
    p.set_defaults(func=cmd_sample)

    p = parser("attention", "attention patterns of every head for a prompt",
               "Draw the attention pattern of every head (rows: layers, columns: heads) on a prompt, with\n"
               "token labels, as a PNG; the patterns are saved as JSON beside it.",
               "  interp attention --run gpt --prompt 'First Citizen:'\n"
               "  interp attention --run attn-only                 # a random induction sequence\n"
               "  interp attention --run attn-only --prompt '<bos> 5 9 13 5 9 13' --layer 1 --head 0,2\n"
               "  interp attention --run attn-only --json     # tokens, patterns [layer][head][query][key], saved\n")
    p.add_argument("--prompt", type=escaped_text,
                   help="the prompt, \\n and \\t standing for a newline and a tab (token-task runs: token names "
                        "separated by spaces; default there: a random induction sequence)")
    p.add_argument("--layer", help="layers to draw, e.g. 1, 0,1 or blocks.1 (default: all)")
    p.add_argument("--head", help="heads to draw, e.g. 0,2 (default: all)")
    add_seed(p)
    p.set_defaults(func=cmd_attention)

    p = parser("heads", "score every head (previous-token, induction, duplicate, first-token)",
               "Score every head on repeated random sequences: previous-token, induction, duplicate-token and\n"
               "first-token scores, one table row per head. Also writes the loss by token position with the\n"
               "in-context-learning score and, for runs that recorded them, the head scores over training.",
               "  interp heads --run attn-only\n"
               "  interp heads --run gpt --sequences 128\n"
               "  interp heads --run attn-only --json         # scores, rows per head, position_loss, saved\n")
    p.add_argument("--sequences", type=int_in(1, 4096), default=64, help="repeated random sequences to average over (default 64)")
    add_seed(p)
    p.set_defaults(func=cmd_heads)

    p = parser("lens", "logit lens and direct logit attribution per head for a prompt",
               "Decode the residual stream after every layer through the final LayerNorm and unembedding\n"
               "(logit lens), and split each next-token logit into the heads' direct contributions.",
               "  interp lens --run gpt --prompt 'ROMEO:\\nWhat say'\n"
               "  interp lens --run attn-only\n"
               "  interp lens --run attn-only --json          # lens + direct_logit_attribution, saved\n")
    p.add_argument("--prompt", type=escaped_text,
                   help="the prompt, \\n and \\t standing for a newline and a tab (default for token-task runs: a "
                        "random induction sequence)")
    p.add_argument("--top-k", type=int_in(1, 1000), default=5, help="top predictions kept per layer and position (default 5)")
    add_seed(p)
    p.set_defaults(func=cmd_lens)

    p = parser("ablate", "loss change on the induction task when each head is ablated",
               "Zero- or mean-ablate each head in turn (TransformerLens hooks on hook_z) and report the\n"
               "loss on repeated random sequences, where induction applies.",
               "  interp ablate --run attn-only\n"
               "  interp ablate --run attn-only --kind mean --layer 1\n"
               "  interp ablate --run attn-only --kind both --json   # zero-ablation; the mean one under \"more\"\n")
    p.add_argument("--kind", default="zero", choices=("zero", "mean", "both"), help="ablation (default zero)")
    p.add_argument("--layer", help="only heads of these layers, e.g. 1 or blocks.1")
    p.add_argument("--head", help="only these heads, e.g. 0,3")
    p.add_argument("--sequences", type=int_in(1, 4096), default=64, help="sequences to average over (default 64)")
    add_seed(p)
    p.set_defaults(func=cmd_ablate)

    p = parser("composition", "OV copying scores and Q/K/V composition between heads",
               "Weight-based circuit analysis: the copying score of each head's OV circuit (eigenvalues of\n"
               "W_E W_OV W_U) and Q-, K- and V-composition scores between heads of different layers, beside the\n"
               "score of random matrices of the same shapes.",
               "  interp composition --run attn-only\n"
               "  interp composition --run attn-only --json   # copying, composition, baseline, strongest\n")
    p.add_argument("--top", type=int_in(1, 10_000), default=5, help="strongest pairs listed per mode (default 5)")
    p.set_defaults(func=cmd_composition)


# --------------------------------------------------------------------- helpers


def _load(args):
    from ..errors import InterpError

    run = load_run_announced(args)
    if run.config.family not in ("gpt", "hf"):
        raise InterpError(f"run {run.name} is a {run.config.model} ({run.config.task}) run; this command needs a "
                          f"transformer run (gpt or attn-only, or an imported hf: model). Train one: interp train "
                          f"attn-only")
    return run


def _index_list(text: str | None, what: str) -> list[int] | None:
    """``"0,2"`` -> ``[0, 2]``; a layer may also be named by its module path, TransformerLens's
    ``blocks.1`` (as ``--layer`` names a module everywhere else). Validity against the model is
    checked by the analysis.

    >>> _index_list("blocks.0,blocks.1", "layer")
    [0, 1]
    """
    import re

    from ..errors import InterpError
    from ..units import parse_unit_list

    if text is None:
        return None
    if what == "layer":
        text = re.sub(r"\bblocks\.(\d+)\b", r"\1", text)
    try:
        return parse_unit_list(text, 1 << 30)
    except InterpError:
        example = "0 or 0,2 or 1-3" + (" or blocks.1" if what == "layer" else "")
        raise InterpError(f"bad --{what} {text!r}: expected numbers like {example}") from None


def _saved(*json_paths: Path) -> None:
    """``Saved:`` lines for each result's JSON file and the figure beside it."""
    from ..results.language import figure_path

    for path in json_paths:
        print(f"Saved: {path}")
        if figure_path(path):
            print(f"Saved: {figure_path(path)}")


# -------------------------------------------------------------------- commands


def cmd_sample(args) -> int:
    from ..analysis.language.tokens import sample_text

    run = _load(args)
    sample = sample_text(run, args.prompt, n_tokens=args.tokens, temperature=args.temperature, seed=args.seed)
    if args.json:
        print_json(sample)
    else:
        print(sample.text)
    return 0


def cmd_attention(args) -> int:
    from ..analysis.language.bridge import check_heads
    from ..analysis.language.heads import attention_patterns
    from ..analysis.language.tokens import prompt_tokens
    from ..pipelines.language import transformer_dir
    from ..results.language import save_attention

    run = _load(args)
    cfg = run.config.model_config
    layers, heads = check_heads(cfg["n_layer"], cfg["n_head"], _index_list(args.layer, "layer"),
                                _index_list(args.head, "head"))
    tokens = prompt_tokens(run, args.prompt, seed=args.seed)
    result = attention_patterns(run, tokens)
    shown = {"layers": layers if args.layer else None, "heads": heads if args.head else None}
    path = save_attention(result, transformer_dir(run), **shown)
    if args.json:
        print_json(result, saved=path)
        return 0
    print(f"Attention of {len(layers) * len(heads)} head(s) on {len(tokens)} tokens: {' '.join(result.tokens)}")
    _saved(path)
    return 0


def cmd_heads(args) -> int:
    from ..analysis.language.heads import head_scores, training_dynamics
    from ..analysis.language.position import loss_by_position
    from ..errors import InterpError
    from ..pipelines.language import transformer_dir
    from ..results import describe
    from ..results.language import save_head_scores, save_position_loss, save_training_dynamics

    run = _load(args)
    out = transformer_dir(run)
    scores = head_scores(run, n_sequences=args.sequences, seed=args.seed)
    paths = [save_head_scores(scores, out)]
    extra = {}
    try:
        position = loss_by_position(run, seed=args.seed)
    except InterpError as e:  # e.g. the training text is no longer where the run says
        position = None
        print(f"(loss by position skipped: {e})", file=sys.stderr)
    else:
        paths.append(save_position_loss(position, out))
        extra["position_loss"] = {**describe(position), "saved": str(paths[-1])}
    if any("head_scores" in r for r in run.metrics):
        dynamics = training_dynamics(run)
        paths.append(save_training_dynamics(dynamics, out))
        extra["training_dynamics"] = {**describe(dynamics), "saved": str(paths[-1])}
    if args.json:
        print_json(scores, saved=paths[0], **extra)
        return 0
    print(f"Scores on {scores.n_sequences} sequences per block length ({', '.join(map(str, scores.lengths))} "
          f"tokens), each head's minimum over the lengths:")
    print(table(scores.rows(), [("head", "head"), ("prev_token", "prev-token"), ("induction", "induction"),
                                ("duplicate", "duplicate"), ("first_token", "first-token"),
                                ("length_dependent", "length-dependent")],
                {**{k: (lambda v: f"{v:.3f}") for k in ("prev_token", "induction", "duplicate", "first_token")},
                 "length_dependent": lambda v: "yes (matches one length by position)" if v else ""}))
    if position is not None:
        print(f"\nIn-context-learning score (loss late minus early in the context): {position.icl_score:+.3f} nats")
    print()
    _saved(*paths)
    return 0


def cmd_lens(args) -> int:
    from ..analysis.language.lens import direct_logit_attribution, logit_lens
    from ..analysis.language.tokens import prompt_tokens
    from ..errors import InterpError
    from ..pipelines.language import transformer_dir
    from ..results import describe
    from ..results.language import save_direct_logit_attribution, save_logit_lens

    run = _load(args)
    if args.top_k < 1:
        raise InterpError(f"--top-k must be >= 1, got {args.top_k}")
    tokens = prompt_tokens(run, args.prompt, seed=args.seed)
    if len(tokens) < 2:
        raise InterpError("the logit lens needs a prompt of at least 2 tokens")
    lens = logit_lens(run, tokens, top_k=args.top_k)
    dla = direct_logit_attribution(run, tokens)
    paths = [save_logit_lens(lens, transformer_dir(run)), save_direct_logit_attribution(dla, transformer_dir(run))]
    if args.json:
        print_json(lens, saved=paths[0], direct_logit_attribution={**describe(dla), "saved": str(paths[1])})
        return 0
    print(f"Prompt: {' '.join(lens.tokens)}")
    print("Top predictions after the last token, by layer:")
    for layer, tops, probs in zip(lens.layers, lens.top_tokens, lens.top_probs):
        print(f"  {layer:<10} " + "  ".join(f"{t!r} {p:.2f}" for t, p in zip(tops[-1], probs[-1].tolist())))
    print("\nHeads with the largest mean direct effect on the actual next token:")
    by_head = dla.by_head()
    for i in by_head.abs().argsort(descending=True)[:5].tolist():
        print(f"  {dla.heads[i]:<6} {float(by_head[i]):+.3f}")
    print()
    _saved(*paths)
    return 0


def cmd_ablate(args) -> int:
    from ..analysis.language.patching import ablate_heads
    from ..pipelines.language import transformer_dir
    from ..results import describe
    from ..results.language import save_ablation

    run = _load(args)
    kinds = ("zero", "mean") if args.kind == "both" else (args.kind,)
    results = [ablate_heads(run, kind=kind, n_sequences=args.sequences, seed=args.seed,
                            layers=_index_list(args.layer, "layer"), heads=_index_list(args.head, "head"))
               for kind in kinds]
    paths = [save_ablation(result, transformer_dir(run)) for result in results]
    if args.json:
        more = [{**describe(r), "saved": str(p)} for r, p in zip(results[1:], paths[1:])]
        print_json(results[0], saved=paths[0], **({"more": more} if more else {}))
        return 0
    print(f"Loss on repeated random sequences where induction applies: clean {results[0].base_loss:.4f}")
    rows = {}
    for result in results:
        for row in result.rows():
            rows.setdefault(row["head"], {"head": row["head"]})[result.kind] = row["delta"]
    print(table(list(rows.values()), [("head", "head")] + [(k, f"{k}-ablated delta") for k in kinds],
                {k: (lambda v: f"{v:+.4f}") for k in kinds}))
    print()
    _saved(*paths)
    return 0


def cmd_composition(args) -> int:
    from ..analysis.language.circuits import MODES, circuit_scores
    from ..pipelines.language import transformer_dir
    from ..results.language import save_circuit_scores

    run = _load(args)
    result = circuit_scores(run)
    path = save_circuit_scores(result, transformer_dir(run))
    if args.json:
        print_json(result, saved=path)
        return 0
    L, H = result.copying.shape
    print(table([{"head": f"L{layer}H{head}", "copying": float(result.copying[layer, head])}
                 for layer in range(L) for head in range(H)],
                [("head", "head"), ("copying", "OV copying score")], {"copying": lambda v: f"{v:+.3f}"}))
    if L > 1:
        for mode in MODES:
            print(f"\n{mode}-composition (random matrices of the same shapes: {result.baseline[mode]:.3f}); strongest:")
            for a, b, score in result.strongest(mode, args.top):
                print(f"  {a} -> {b}  {score:.3f}")
    else:
        print("\n(one layer: no composition between layers)")
    print()
    _saved(path)
    return 0
