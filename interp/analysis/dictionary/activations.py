"""A layer's activations as a stream of rows, and the data the rows came from.

Transformers (``gpt`` / ``attn-only`` runs) are read through their TransformerLens bridge,
so a layer is a TL hook name (``blocks.1.hook_resid_post``, ``blocks.0.hook_mlp_out``,
``blocks.0.mlp.hook_post``); every position of every window is one row. CNNs use module
paths (``conv2``); every spatial position of every image is one row (its channel vector).

Which inputs, in which order, is fixed by ``(run, split, seed)`` alone, so any ``n`` reads a
prefix of the same sequence of inputs and :func:`source_data` with the same arguments
shows the inputs that ``origin`` indices point into:

- text: windows of ``block_size + 1`` tokens of the run's text split (``"test"``: the
  validation 10%, ``"train"``: the first 90%), or of its induction task; drawn in chunks of
  :data:`CHUNK` windows, chunk ``c`` from a generator seeded ``(seed, c)``. A window's model
  input is ``tokens[:, :-1]``; ``origin = (sequence, position, token_id)``.
- images: the split's images in a class-balanced order (the classes' seeded shuffles
  taken in turn, :func:`interp.data.samples.shuffled_classes`), so every prefix is
  stratified; ``origin = (image_index, y, x)`` with ``image_index`` into the split
  (``source_data(...).images``); a non-spatial layer (``fc1``) has ``y = x = 0``.

Rows are shuffled (seeded) within a buffer of about ``8 * batch_size`` rows before they are
cut into batches: rows of one window are strongly correlated, and memory stays bounded.

>>> for batch in layer_activations(run, "blocks.1.hook_resid_post", n=10_000):
...     batch.acts.shape, batch.origin[0]          # (1024, 96), (sequence, position, token)
>>> data = source_data(run, seed=0, n=10_000)
>>> data.tokens[batch.origin[0, 0], batch.origin[0, 1]] == batch.origin[0, 2]
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

from ...errors import InterpError, unknown

CHUNK = 64
"""Windows per seeded chunk of a text source (any ``n`` reads a prefix of the same windows)."""
BUFFER_BATCHES = 8
"""Rows are shuffled within buffers of this many batches."""
SPLITS = ("test", "train")


@dataclass
class ActivationBatch:
    """Rows of a layer's activations and where each came from (see the module docstring)."""

    acts: torch.Tensor  # (N, d) float32
    origin: torch.Tensor  # (N, 3) long: (sequence, position, token_id) or (image_index, y, x)


@dataclass
class SourceData:
    """The inputs that ``origin`` indices point into.

    Text: ``tokens`` ``(B, T+1)`` windows (model input ``tokens[:, :-1]``), ``vocab`` the
    run's vocabulary (``vocab.labels(ids)`` for display). Images: ``images`` uint8
    ``(N, C, H, W)`` (the whole split), ``labels`` ``(N,)``, ``classes``, and ``order`` the
    class-balanced order in which the stream reads them.
    """

    kind: str  # "text" | "image"
    split: str
    seed: int
    tokens: torch.Tensor | None = None
    vocab: Any = None
    images: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    classes: list[str] = field(default_factory=list)
    order: torch.Tensor | None = None
    name: str = ""


def is_transformer(run: Any) -> bool:
    """Whether a run is a language model (read through the TL bridge) rather than an image model."""
    config = getattr(run, "config", None)
    return getattr(config, "task", "") == "language-model"


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise InterpError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    return split


def _context(run) -> int:
    return int(run.config.model_config["block_size"])


def text_windows(run: Any, n_sequences: int, *, split: str = "test", seed: int = 0) -> torch.Tensor:
    """The first ``n_sequences`` windows ``(n, T+1)`` of the run's seeded window sequence (see module)."""
    from ..language.tokens import run_vocabulary, task_tokens

    _check_split(split)
    context = _context(run)
    n_chunks = max(1, math.ceil(n_sequences / CHUNK))
    vocab = run_vocabulary(run)
    chunks = []
    if vocab.is_char:
        from ...data.text import load_char_corpus, random_windows

        corpus = load_char_corpus(run.config.data.name, progress=False)
        ids = corpus.val if split == "test" else corpus.train
        for c in range(n_chunks):
            chunks.append(random_windows(ids, CHUNK, context, torch.Generator().manual_seed(seed * 1_000_003 + c)))
    elif run.config.data.name.startswith("induction"):
        for c in range(n_chunks):  # a generated task: the split only changes the seed
            chunk_seed = seed * 1_000_003 + c + (500_000 if split == "train" else 0)
            chunks.append(task_tokens(run, CHUNK, seed=chunk_seed, seq_len=context + 1))
    else:
        raise InterpError(f"run {run.name} has no text to read activations from (character corpora and "
                          f"the induction task are supported)")
    return torch.cat(chunks)[:n_sequences]


def class_balanced_order(labels: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
    """Every index of ``labels``, the classes' seeded shuffles taken in turn (each prefix stratified).

    >>> class_balanced_order(torch.tensor([0, 0, 1, 1]), seed=0).tolist()   # class 0, 1, 0, 1
    """
    from ...data.samples import shuffled_classes

    per_class = list(shuffled_classes(torch.as_tensor(labels), seed=seed).values())
    longest = max((len(p) for p in per_class), default=0)
    table = torch.full((longest, len(per_class)), -1, dtype=torch.long)
    for j, idx in enumerate(per_class):
        table[:len(idx), j] = idx
    flat = table.flatten()
    return flat[flat >= 0]


def _image_split(run: Any, split: str):
    data = run.load_data(progress=False, split="test" if split == "test" else "both")
    if split == "test":
        return data.test_x, data.test_y, list(data.classes), data.name
    return data.train_x, data.train_y, list(data.classes), data.name


def source_data(run: Any, split: str = "test", seed: int = 0, *, n: int = 200_000) -> SourceData:
    """The inputs behind :func:`layer_activations` ``(run, ..., n=n, seed=seed, split=split)``.

    Text: the windows that ``n`` activations need (``ceil(n / T)``); images: the whole
    split (``origin`` image indices point into it) and the order the stream reads it in.
    """
    _check_split(split)
    if is_transformer(run):
        from ..language.tokens import run_vocabulary

        return SourceData("text", split, seed, tokens=text_windows(run, math.ceil(n / _context(run)), split=split,
                                                                   seed=seed),
                          vocab=run_vocabulary(run), name=run.config.data.name)
    images, labels, classes, name = _image_split(run, split)
    return SourceData("image", split, seed, images=images, labels=torch.as_tensor(labels), classes=classes,
                      order=class_balanced_order(labels, seed=seed), name=name)


# ------------------------------------------------------------------------------ layers


def transformer_layers(n_layers: int, *, mlp: bool = True) -> list[str]:
    """The TL hook names offered for dictionaries (any 3-D hook of the bridge is accepted too)."""
    names = []
    for i in range(n_layers):
        names += [f"blocks.{i}.hook_resid_pre", f"blocks.{i}.hook_attn_out"]
        if mlp:
            names += [f"blocks.{i}.hook_resid_mid", f"blocks.{i}.hook_mlp_out", f"blocks.{i}.mlp.hook_post"]
        names.append(f"blocks.{i}.hook_resid_post")
    return names


class LayerSource:
    """One layer of one run: read its activations, or run the model with the layer replaced.

    The model part of :func:`layer_activations` and of the metrics (loss recovered); every hook
    is scoped (TL's ``bridge.hooks`` for transformers, :mod:`interp.hooks` for CNNs).

    >>> source = LayerSource(run, "conv2")
    >>> rows, origin, logits = source.forward(x, index)           # clean
    >>> logits = source.forward(x, index, replace=lambda rows: sae(rows))[2]
    """

    def __init__(self, run: Any, layer: str, *, device: Any = None):
        from ...runs import load_run

        if isinstance(run, str) or hasattr(run, "__fspath__"):
            run = load_run(run)
        self.run = run
        self.layer = layer
        self.kind = "text" if is_transformer(run) else "image"
        if self.kind == "text":
            from ..language.bridge import to_bridge

            self.model = to_bridge(run)
            cfg = run.config.model_config
            valid = transformer_layers(int(cfg["n_layer"]), mlp=bool(cfg.get("mlp", True)))
            if layer not in self.model.hook_dict:
                raise unknown("layer", layer, valid)
        else:
            from ...hooks import get_module
            from ...subject import as_subject

            self.subject = as_subject(run)
            self.model = self.subject.model
            names = [info.name for info in run.layers] if getattr(run, "layers", None) else None
            if names and layer not in names:
                raise unknown("layer", layer, names)
            get_module(self.model, layer)
        if device is not None:
            self.model.to(device)
        self.device = next(self.model.parameters()).device
        self.model.eval()
        self.d_in = None  # known after the first forward pass

    # -- inputs ------------------------------------------------------------------------

    def inputs(self, n: int, *, split: str = "test", seed: int = 0, rows_per_pass: int = 8192,
               data: SourceData | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(model_input_source, index)`` chunks covering about ``n`` rows: token windows
        ``(B, T+1)`` or uint8 images, with their indices into :func:`source_data`."""
        data = data or source_data(self.run, split, seed, n=n)
        if self.kind == "text":
            per = data.tokens.shape[1] - 1
            n_seq = min(len(data.tokens), math.ceil(n / per))
            step = max(1, rows_per_pass // per)
            for start in range(0, n_seq, step):
                index = torch.arange(start, min(n_seq, start + step))
                yield data.tokens[index], index
            return
        per = self.positions_per_image(data.images[:1])
        n_img = min(len(data.order), math.ceil(n / per))
        step = max(1, rows_per_pass // per)
        for start in range(0, n_img, step):
            index = data.order[start:min(n_img, start + step)]
            yield data.images[index], index

    def positions_per_image(self, image: torch.Tensor) -> int:
        rows, _, _ = self.forward(image, torch.zeros(1, dtype=torch.long), logits=False)
        return len(rows)

    # -- forward -----------------------------------------------------------------------

    @torch.no_grad()
    def forward(self, batch: torch.Tensor, index: torch.Tensor, *, replace: Callable | None = None,
                logits: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(rows (N, d), origin (N, 3), logits)`` for one chunk of inputs.

        ``replace`` maps the layer's rows ``(N, d)`` to new rows (a dictionary's reconstruction,
        zeros for ablation); ``rows`` are always the layer's own (clean up to the layer).
        ``logits=False`` skips what is above the layer where it can (CNNs).
        """
        store: dict[str, torch.Tensor] = {}
        if self.kind == "text":
            x = batch[:, :-1].to(self.device)

            def hook(t, hook=None):
                flat = t.reshape(-1, t.shape[-1])
                store["rows"] = flat.detach().float()
                if replace is not None:
                    return replace(store["rows"]).to(t.dtype).reshape(t.shape)
                return None

            with self._bridge_hooks([(self.layer, hook)]):
                out = self.model(x)
            if "rows" not in store:
                raise InterpError(f"hook {self.layer!r} did not run in the model's forward pass")
            B, T = x.shape
            if store["rows"].shape[0] != B * T:
                raise InterpError(f"hook {self.layer!r} is not one vector per position (shape "
                                  f"{tuple(store['rows'].shape)}); pick a residual, attention/MLP output or MLP "
                                  f"neuron hook, e.g. blocks.0.hook_resid_post")
            origin = torch.stack([index[:, None].expand(B, T), torch.arange(T)[None, :].expand(B, T),
                                  batch[:, :-1].cpu()], -1).reshape(-1, 3)
            self.d_in = store["rows"].shape[1]
            return store["rows"], origin, out.float() if logits else None
        from ...hooks import Recorder, eval_mode, forward_hooks

        x = self.subject.to_model_input(batch)
        shape: dict[str, tuple] = {}

        def rows_of(out: torch.Tensor) -> torch.Tensor:
            shape["out"] = tuple(out.shape)
            return (out.permute(0, 2, 3, 1) if out.dim() == 4 else out).reshape(-1, out.shape[1]).float()

        def back(rows: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
            if like.dim() == 4:
                B, C, H, W = like.shape
                return rows.reshape(B, H, W, C).permute(0, 3, 1, 2).to(like.dtype).contiguous()
            return rows.reshape(like.shape).to(like.dtype)

        with eval_mode(self.model):
            if not logits:
                with Recorder(self.model, [self.layer]) as rec:
                    acts = rec.run(x)[self.layer]
                rows, out = rows_of(acts), None
            else:
                def splice(_module, _inputs, output):
                    store["rows"] = rows_of(output.detach())
                    return back(replace(store["rows"]), output) if replace is not None else None

                with forward_hooks(self.model, {self.layer: splice}):
                    out = self.model(x).float()
                rows = store["rows"]
        s = shape["out"]
        B = s[0]
        H, W = (s[2], s[3]) if len(s) == 4 else (1, 1)
        ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
        origin = torch.stack([index[:, None].expand(B, H * W), ys.reshape(1, -1).expand(B, H * W),
                              xs.reshape(1, -1).expand(B, H * W)], -1).reshape(-1, 3)
        self.d_in = rows.shape[1]
        return rows, origin, out

    @contextlib.contextmanager
    def _bridge_hooks(self, hooks):
        # TL's scoped hooks remove themselves on exit, also when the forward pass raises.
        with self.model.hooks(fwd_hooks=hooks):
            yield

    def loss(self, batch: torch.Tensor, index: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor | None = None
             ) -> torch.Tensor:
        """Per-input loss ``(B,)``: mean next-token cross-entropy of each window, or each image's
        cross-entropy on its label (``labels``: the split's labels)."""
        if self.kind == "text":
            targets = batch[:, 1:].to(logits.device)
            return F.cross_entropy(logits.transpose(1, 2), targets, reduction="none").mean(1).cpu()
        return F.cross_entropy(logits, labels[index].to(logits.device), reduction="none").cpu()


def layer_activations(run: Any, layer: str, *, n: int, batch_size: int = 1024, seed: int = 0,
                      split: str = "test", device: Any = None) -> Iterator[ActivationBatch]:
    """About ``n`` rows of ``layer``'s activations, ``batch_size`` at a time (see the module docstring).

    Memory holds one buffer of about ``8 * batch_size`` rows; the forward passes stop at the
    layer for CNNs. Rows within a buffer are shuffled by a generator seeded ``seed``.
    """
    if n < 1:
        raise InterpError(f"n must be at least 1, got {n}")
    if batch_size < 1:
        raise InterpError(f"batch_size must be at least 1, got {batch_size}")
    source = layer if isinstance(layer, LayerSource) else LayerSource(run, layer, device=device)
    g = torch.Generator().manual_seed(seed)
    left = n
    for chunk, index in source.inputs(n, split=split, seed=seed, rows_per_pass=BUFFER_BATCHES * batch_size):
        rows, origin, _ = source.forward(chunk, index, logits=False)
        order = torch.randperm(len(rows), generator=g)[:left]
        rows, origin = rows[order.to(rows.device)].cpu(), origin[order]
        left -= len(rows)
        for start in range(0, len(rows), batch_size):
            yield ActivationBatch(rows[start:start + batch_size], origin[start:start + batch_size])
        if left <= 0:
            return
