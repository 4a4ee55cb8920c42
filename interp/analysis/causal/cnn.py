"""A CNN as a circuit graph: channels and units are nodes, consecutive layers' weights are edges.

Nodes are the output channels of conv layers and the units of linear layers (``conv1:3``,
``fc3:7``; the last layer's units are the class logits), and with ``input_edges=True`` the
input image's colour channels (``input:0``). The edge ``conv1:3->conv2:5`` is what channel 5
of conv2 computes from channel 3 of its input: the kernel slice ``W[5, 3]`` applied to
conv1's channel 3 *after* what sits between the layers (ReLU, max-pool, batch norm; for
``conv2:c->fc1:u`` the flatten too, so one edge covers every spatial position of channel c).
Those in-between operations must act on each channel alone (checked when a graph is built),
so the target layer's input splits into one block per source node. A conv or linear layer
is linear in its input, so any set of edges can be replaced exactly, leaving the target's
other inputs alone (the bias is counted once, in ``layer(x)``)::

    out = layer(x) + layer_without_bias(x_replaced - x, W * M)    # M[j, i] = 1: edge i->j replaced

An edge's *value* is that block of the target's input; ablated edges carry its mean over a
reference batch (the clean model), patched ones its value on the corrupted inputs.

Corrupted inputs (what the scores of :mod:`.cnn_edges` patch towards), documented choices:

- images of another class, paired one to one with the clean images (``logit-diff`` then
  compares the clean class with the corrupted one);
- ``"mean"``: every edge at its reference mean, the value faithfulness ablates to, so the
  scores estimate each edge's own mean-ablation effect;
- ``"mean-image"``: the activations of the reference batch's mean image.

>>> graph = CNNGraph.from_classes(run, "cat", corrupted="dog", n=32)   # a CIFAR-10 tutorial run
>>> len(graph.edges), graph.edges[0]                 # conv1->conv2, conv2->fc1, fc1->fc2, fc2->fc3
(12936, Edge('conv1:0', 'conv2:0'))
>>> graph.metric(None).mean(), graph.metric([]).mean()    # full model, every edge mean-ablated
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import InterpError, unknown
from ...hooks import StopForward, forward_hooks, frozen, get_module, no_new_hooks, run_until
from ...subject import as_subject
from .graph import Edge

METRICS = ("class-logit", "class-prob", "logit-diff", "loss")
CORRUPTIONS = ("mean", "mean-image")
INPUT = "input"
_REFERENCE_CHUNK = 512  # reference images per forward pass when taking means


def metric_values(logits: torch.Tensor, target: torch.Tensor, contrast: torch.Tensor | None,
                  name: str) -> torch.Tensor:
    """Per-example metric ``(N,)`` of ``logits`` (N, classes) for class ``target`` (N,).

    >>> metric_values(torch.tensor([[2.0, 0.5]]), torch.tensor([0]), torch.tensor([1]), "logit-diff")
    tensor([1.5000])
    """
    pick = target.view(-1, 1)
    if name == "class-logit":
        return logits.gather(1, pick)[:, 0]
    if name == "class-prob":
        return logits.softmax(1).gather(1, pick)[:, 0]
    if name == "logit-diff":
        return logits.gather(1, pick)[:, 0] - logits.gather(1, contrast.view(-1, 1))[:, 0]
    if name == "loss":
        return F.cross_entropy(logits, target, reduction="none")
    raise unknown("metric", name, METRICS)


@dataclass
class LayerPair:
    """The edges from one layer's nodes (``source``) into the next conv or linear layer (``target``).

    ``clean``, ``corrupted`` and ``mean`` are the target's input (the edges' values) on the
    clean batch, the corrupted inputs (batch B or 1) and averaged over the reference batch (1).
    Edge ``k`` of the pair runs from source node ``k % n_source`` to target node ``k // n_source``.
    """

    source: str
    target: str
    module: nn.Module
    n_source: int
    n_target: int
    block: int                  # input features per source node (a linear target after a flatten)
    offset: int                 # index of the pair's first edge in the graph's edge list
    clean: torch.Tensor = field(repr=False, default=None)
    corrupted: torch.Tensor = field(repr=False, default=None)
    mean: torch.Tensor = field(repr=False, default=None)

    @property
    def n_edges(self) -> int:
        return self.n_source * self.n_target

    @property
    def is_conv(self) -> bool:
        return isinstance(self.module, nn.Conv2d)

    def edges(self) -> list[Edge]:
        return [Edge(f"{self.source}:{i}", f"{self.target}:{j}")
                for j in range(self.n_target) for i in range(self.n_source)]

    def _weight(self, mask: torch.Tensor | None) -> torch.Tensor:
        w = self.module.weight
        if mask is None:
            return w
        if self.is_conv:
            return w * mask[:, :, None, None].to(w.dtype)
        return w * mask.to(w.dtype).repeat_interleave(self.block, dim=1)

    def through(self, delta: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The target layer without its bias applied to an input change ``delta``, through the
        edges where ``mask`` (n_target, n_source) is 1 (all edges when None)."""
        w = self._weight(mask)
        m = self.module
        if self.is_conv:
            return F.conv2d(delta, w, None, m.stride, m.padding, m.dilation)
        return F.linear(delta, w)

    def edge_outputs(self, delta: torch.Tensor, sources: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The change of target node ``targets[e]``'s output when only edge ``sources[e]->targets[e]``
        carries ``delta``: ``(B, E, *spatial)``."""
        w = self.module.weight
        if self.is_conv:
            m = self.module
            kernels = w[targets, sources].unsqueeze(1)                       # (E, 1, kh, kw)
            return F.conv2d(delta[:, sources], kernels, None, m.stride, m.padding, m.dilation,
                            groups=len(sources))
        d = delta.reshape(len(delta), self.n_source, self.block)[:, sources]  # (B, E, block)
        return torch.einsum("bef,ef->be", d, w.view(self.n_target, self.n_source, self.block)[targets, sources])

    def attribution(self, delta: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """``sum_b <edge i->j's output change for delta, grad of the metric at j>`` for every edge,
        ``(n_target, n_source)``, without materialising the per-edge outputs: the weight times
        the weight-gradient of the linear form (``torch.nn.grad.conv2d_weight``)."""
        w = self.module.weight
        if self.is_conv:
            m = self.module
            delta = delta.expand(len(grad), *delta.shape[1:])
            wgrad = torch.nn.grad.conv2d_weight(delta, w.shape, grad, m.stride, m.padding, m.dilation)
            return (w * wgrad).sum((2, 3))
        delta = delta.expand(len(grad), *delta.shape[1:])
        wgrad = grad.transpose(0, 1) @ delta                                   # (n_target, in_features)
        return (w * wgrad).view(self.n_target, self.n_source, self.block).sum(-1)


def _check_layer(model: nn.Module, name: str) -> nn.Module:
    module = get_module(model, name)
    if isinstance(module, nn.Conv2d):
        if module.groups != 1 or module.padding_mode != "zeros":
            raise InterpError(f"layer {name!r} is a grouped or non-zero-padded conv; circuit edges need "
                              f"plain convs (groups=1, padding_mode='zeros')")
        return module
    if isinstance(module, nn.Linear):
        return module
    raise InterpError(f"layer {name!r} is a {type(module).__name__}; circuit nodes are the outputs of "
                      f"Conv2d and Linear layers (e.g. conv1, conv2, fc1)")


def default_layers(model: nn.Module, example: torch.Tensor) -> list[str]:
    """Every Conv2d and Linear layer in the order the forward pass runs them (the model's own
    ``layer_names`` when it declares them)."""
    declared = getattr(model, "layer_names", None)
    if declared:
        return [n for n in declared if isinstance(get_module(model, n), (nn.Conv2d, nn.Linear))]
    order: list[str] = []
    hooks = {name: (lambda n: lambda *_: order.append(n))(name) for name, m in model.named_modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))}
    with torch.no_grad(), forward_hooks(model, hooks):
        model(example)
    return list(dict.fromkeys(order))


def _n_units(model: nn.Module, name: str, example: torch.Tensor) -> int:
    if name == INPUT:
        return example.shape[1]
    module = get_module(model, name)
    return module.out_channels if isinstance(module, nn.Conv2d) else module.out_features


def _block(source: str, target: str, module: nn.Module, n_source: int) -> int:
    n_in = module.in_channels if isinstance(module, nn.Conv2d) else module.in_features
    if isinstance(module, nn.Conv2d) and n_in != n_source:
        raise InterpError(f"{target} reads {n_in} channels but {source} has {n_source}: "
                          f"the layers are not consecutive")
    if n_in % n_source:
        raise InterpError(f"{target} reads {n_in} features, not a multiple of {source}'s {n_source} units: "
                          f"the layers are not consecutive")
    return 1 if isinstance(module, nn.Conv2d) else n_in // n_source


def check_wiring(model: nn.Module, example: torch.Tensor, pair: LayerPair) -> None:
    """Raise InterpError unless block ``i`` of the target's input depends on source node ``i`` only.

    One backward pass on ``n_source`` copies of one example: copy ``g`` backpropagates block
    ``g`` of the target's input, and its gradient must be zero on every other source channel.
    Catches skipped layers, layers listed out of order and channel-mixing modules in between.
    """
    g_count = pair.n_source
    seen: dict[str, torch.Tensor] = {}

    def source_hook(_module, _inputs, output):
        seen["source"] = output.detach().repeat(g_count, *[1] * (output.dim() - 1)).requires_grad_()
        return seen["source"]

    def target_hook(_module, inputs, _output):
        seen["target"] = inputs[0]
        raise StopForward

    x = example[:1]
    hooks = {pair.target: target_hook}
    if pair.source == INPUT:
        x = seen["source"] = x.detach().repeat(g_count, 1, 1, 1).requires_grad_()
    else:
        hooks = {pair.source: source_hook, pair.target: target_hook}
    with torch.enable_grad(), forward_hooks(model, hooks):
        run_until(model, x)
    if "target" not in seen or "source" not in seen or not seen["target"].requires_grad:
        raise InterpError(f"{pair.target} does not read {pair.source}'s output in the forward pass: "
                          f"list the layers in forward order, each reading the one before")
    blocks = seen["target"].reshape(g_count, g_count, -1)
    own = blocks[torch.arange(g_count), torch.arange(g_count)].sum()
    (grad,) = torch.autograd.grad(own, seen["source"], allow_unused=True)
    if grad is None:
        return
    reach = grad.reshape(g_count, grad.shape[1], -1).abs().sum(-1)          # (copy, source channel)
    reach[torch.arange(g_count), torch.arange(g_count)] = 0
    if reach.shape[1] != g_count or float(reach.max()) > 0:
        raise InterpError(f"{pair.target}'s input mixes {pair.source}'s channels (a layer between them "
                          f"combines channels, or the layers are not consecutive); circuit edges need "
                          f"per-channel operations (ReLU, pooling, batch norm, flatten) between layers")


def _reading_hooks(targets: Sequence[str], outputs: Sequence[str], store: dict) -> dict[str, Callable]:
    """Hooks recording ``store["in", t]`` (input of t) and ``store["out", l]`` (output of l)."""
    def make(name):
        def hook(_module, inputs, output):
            if name in targets:
                store["in", name] = inputs[0].detach()
            if name in outputs:
                store["out", name] = output.detach()
        return hook
    return {name: make(name) for name in dict.fromkeys([*targets, *outputs])}


def read_activations(model: nn.Module, x: torch.Tensor, targets: Sequence[str], outputs: Sequence[str],
                     *, average: bool = False) -> dict:
    """Inputs of ``targets`` and outputs of ``outputs`` on ``x``: ``{("in", t): ..., ("out", l): ...}``;
    with ``average`` their means over ``x`` (batch 1), taken in chunks."""
    total: dict = {}
    for start in range(0, len(x), _REFERENCE_CHUNK if average else len(x)):
        chunk, store = x[start:start + (_REFERENCE_CHUNK if average else len(x))], {}
        with torch.no_grad(), forward_hooks(model, _reading_hooks(targets, outputs, store)):
            model(chunk)
        for key, value in store.items():
            total[key] = total.get(key, 0) + (value.sum(0, keepdim=True) if average else value)
    return {k: v / len(x) for k, v in total.items()} if average else total


class CNNGraph:
    """A CNN's channels and units as nodes, consecutive layers' weights as edges (module docstring).

    ``clean``: model inputs (B, C, H, W) (uint8 images are normalised with the run's
    preprocessing). ``target``: the class whose metric is read, per example or one int
    (default: the model's prediction). ``corrupted``: images (B or 1), ``"mean"`` or
    ``"mean-image"``. ``contrast``: the other class of ``logit-diff``. ``reference``: the
    images whose mean activations ablate edges (default: clean and corrupted images together;
    :meth:`from_classes` takes a stratified sample of the test set). ``layers``: conv/linear
    layers in forward order (default: all of them).
    """

    def __init__(self, model: Any, clean: torch.Tensor, *, target: torch.Tensor | int | None = None,
                 corrupted: torch.Tensor | str = "mean", contrast: torch.Tensor | int | None = None,
                 reference: torch.Tensor | None = None, metric: str = "class-logit",
                 layers: Sequence[str] | None = None, input_edges: bool = False, settings: dict | None = None):
        self.subject = as_subject(model)
        self.model = self.subject.model
        if metric not in METRICS:
            raise unknown("metric", metric, METRICS)
        self.metric_name = metric
        self.clean = self._inputs(clean, "clean")
        with self.scoped():
            self.layers = list(layers) if layers else default_layers(self.model, self.clean[:1])
            if len(self.layers) < (1 if input_edges else 2):
                raise InterpError(f"a circuit needs two layers or more to have edges; got {self.layers}")
            for name in self.layers:
                _check_layer(self.model, name)
            self.target = self._classes(target, "target")
            self.contrast = self._classes(contrast, "contrast") if contrast is not None else None
            if metric == "logit-diff" and self.contrast is None:
                raise InterpError("metric logit-diff needs a contrast class (the corrupted images' class): "
                                  "give contrast=CLASS, or use CNNGraph.from_classes(run, A, corrupted=B)")
            self.corruption = corrupted if isinstance(corrupted, str) else "images"
            if isinstance(corrupted, str) and corrupted not in CORRUPTIONS:
                raise unknown("corruption", corrupted, [*CORRUPTIONS, "(a tensor of images)"])
            corrupted_x = None if isinstance(corrupted, str) else self._inputs(corrupted, "corrupted")
            if corrupted_x is not None and len(corrupted_x) not in (1, len(self.clean)):
                raise InterpError(f"{len(corrupted_x)} corrupted images for {len(self.clean)} clean ones: "
                                  f"give one per clean image, or one for all")
            if reference is None:
                reference = self.clean if corrupted_x is None else torch.cat([self.clean, corrupted_x])
            self.reference_size = len(reference)
            self.pairs = self._pairs(input_edges)
            self._read(self._inputs(reference, "reference"), corrupted_x)
        self.edges = [e for pair in self.pairs for e in pair.edges()]
        self._index = {e: i for i, e in enumerate(self.edges)}
        self.settings = {"layers": self.layers, "corrupted": self.corruption, "n": len(self.clean),
                         "reference": self.reference_size, "input_edges": input_edges, **(settings or {})}

    # -- construction ---------------------------------------------------------------

    def _inputs(self, x: torch.Tensor, what: str) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or not len(x):
            raise InterpError(f"{what} inputs must be a (N, C, H, W) tensor of images, got "
                              f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        if x.dtype == torch.uint8:
            x = self.subject.to_model_input(x)
        p = next(self.model.parameters())
        return x.detach().to(p.device, p.dtype)

    def _classes(self, value, what: str) -> torch.Tensor:
        n = len(self.clean)
        if value is None:
            with torch.no_grad():
                return self.model(self.clean).argmax(1)
        value = torch.as_tensor(value, dtype=torch.long, device=self.clean.device).flatten()
        if len(value) == 1:
            value = value.expand(n).clone()
        if len(value) != n:
            raise InterpError(f"{len(value)} {what} classes for {n} clean images: give one per image, or one int")
        return value

    def _pairs(self, input_edges: bool) -> list[LayerPair]:
        names = [INPUT, *self.layers] if input_edges else list(self.layers)
        pairs, offset = [], 0
        for source, target in zip(names, names[1:]):
            module = get_module(self.model, target)
            n_source = _n_units(self.model, source, self.clean)
            n_target = module.out_channels if isinstance(module, nn.Conv2d) else module.out_features
            pair = LayerPair(source, target, module, n_source, n_target, _block(source, target, module, n_source),
                             offset)
            check_wiring(self.model, self.clean, pair)
            pairs.append(pair)
            offset += pair.n_edges
        return pairs

    def _read(self, reference: torch.Tensor, corrupted_x: torch.Tensor | None) -> None:
        targets = [p.target for p in self.pairs]
        clean = read_activations(self.model, self.clean, targets, self.layers)
        mean = read_activations(self.model, reference, targets, self.layers, average=True)
        if self.corruption == "mean":
            corrupted = mean
        else:
            x = reference.mean(0, keepdim=True) if corrupted_x is None else corrupted_x
            corrupted = read_activations(self.model, x, targets, self.layers)
        for pair in self.pairs:
            key = ("in", pair.target)
            pair.clean, pair.corrupted, pair.mean = clean[key], corrupted[key], mean[key]
        self.clean_outputs = {n: clean["out", n] for n in self.layers}
        self.corrupted_outputs = {n: corrupted["out", n] for n in self.layers}

    @classmethod
    def from_classes(cls, run: Any, clean_class: str | int | None = None, corrupted: str | int = "mean", *,
                     n: int = 32, n_reference: int = 256, seed: int = 0, metric: str | None = None,
                     target: str | int | None = None, layers: Sequence[str] | None = None,
                     input_edges: bool = False, data: Any = None) -> "CNNGraph":
        """A graph on a run's test images: ``n`` seeded images of ``clean_class`` (None: a stratified
        sample of all classes) against ``n`` of class ``corrupted`` (paired in order), or
        ``"mean"`` / ``"mean-image"``; a stratified reference sample of ``n_reference`` images.
        The metric defaults to ``logit-diff`` against a corrupted class, else ``class-logit``
        of each image's own class (``target`` fixes one class instead).

        >>> CNNGraph.from_classes(run, "cat", corrupted="dog", n=32).metric_name
        'logit-diff'
        """
        from ...data.samples import shuffled_classes, stratified_sample

        data = data if data is not None else run.load_data(progress=False, split="test")
        classes = list(getattr(data, "classes", None) or getattr(run, "classes", None) or [])
        labels = torch.as_tensor(data.test_y)
        by_class = shuffled_classes(labels, seed=seed)
        clean_label = _class_index(clean_class, classes, by_class)
        if clean_label is None:
            clean_idx = stratified_sample(labels, n, seed=seed).indices
        else:
            clean_idx = by_class[clean_label][:n]
        settings = {"clean_class": _class_name(clean_label, classes), "seed": seed}
        reference = stratified_sample(labels, n_reference, seed=seed, classes=classes or None)
        settings["reference_sample"] = reference.to_dict()
        images = data.test_x
        contrast = None
        if isinstance(corrupted, str) and corrupted in CORRUPTIONS:
            corrupted_x = corrupted
            metric = metric or "class-logit"
        else:
            if clean_label is None:
                raise InterpError("a corrupted class needs a clean class (images of one class against another's)")
            contrast = _class_index(corrupted, classes, by_class)
            corrupted_idx = by_class[contrast][:n]
            clean_idx = clean_idx[:len(corrupted_idx)]
            corrupted_x = images[corrupted_idx[:len(clean_idx)]]
            settings["corrupted_class"] = _class_name(contrast, classes)
            metric = metric or "logit-diff"
        if target is not None:
            target = _class_index(target, classes, by_class)
        return cls(run, images[clean_idx], target=labels[clean_idx] if target is None else target,
                   corrupted=corrupted_x, contrast=contrast, reference=images[reference.indices], metric=metric,
                   layers=layers, input_edges=input_edges, settings=settings)

    # -- the CircuitGraph protocol ----------------------------------------------------

    @property
    def nodes(self) -> list[str]:
        names = [p.source for p in self.pairs] + [self.pairs[-1].target]
        counts = [p.n_source for p in self.pairs] + [self.pairs[-1].n_target]
        return [f"{name}:{i}" for name, c in zip(names, counts) for i in range(c)]

    def edges_into(self, node: str) -> list[Edge]:
        """The edges that ``node`` (``conv2:5``) reads, in source order."""
        return [e for e in self.edges if e.target == node]

    def edges_from(self, node: str) -> list[Edge]:
        """The edges that read ``node`` (``conv1:3``), in target order."""
        return [e for e in self.edges if e.source == node]

    def pair(self, target: str) -> LayerPair:
        """The pair whose target layer is ``target``."""
        for p in self.pairs:
            if p.target == target:
                return p
        raise unknown("target layer", target, [p.target for p in self.pairs])

    def locate(self, edge: Edge | str) -> tuple[LayerPair, int, int]:
        """``(pair, source node, target node)`` of an edge of the graph."""
        edge = Edge.parse(edge) if isinstance(edge, str) else edge
        if edge not in self._index:
            raise InterpError(f"edge {edge} is not in the graph (edges run between consecutive layers "
                              f"{' -> '.join(p.source for p in self.pairs)} -> {self.pairs[-1].target})")
        k = self._index[edge]
        pair = next(p for p in reversed(self.pairs) if p.offset <= k)
        return pair, (k - pair.offset) % pair.n_source, (k - pair.offset) // pair.n_source

    def score(self, logits: torch.Tensor, replicas: int = 1) -> torch.Tensor:
        """The metric of ``logits`` for ``replicas`` stacked copies of the clean batch: ``(replicas * B,)``."""
        if len(logits) != replicas * len(self.clean):
            raise InterpError(f"the model returned {len(logits)} rows for {replicas} x {len(self.clean)} examples: "
                              f"its forward pass fixes the batch size, which batched patching needs to change")
        contrast = self.contrast.repeat(replicas) if self.contrast is not None else None
        return metric_values(logits, self.target.repeat(replicas), contrast, self.metric_name)

    def evaluate(self, hooks: dict[str, Callable] | None = None, replicas: int = 1) -> torch.Tensor:
        """The metric of the clean batch with ``hooks`` on (hooks may stack ``replicas`` copies)."""
        with forward_hooks(self.model, hooks or {}):
            return self.score(self.model(self.clean), replicas)

    @contextlib.contextmanager
    def scoped(self) -> Iterator[None]:
        """Eval mode, no parameter gradients, and every hook added inside removed (also on error)."""
        with frozen(self.model), no_new_hooks(self.model):
            yield

    def masks(self, kept: Collection[Edge]) -> list[torch.Tensor]:
        """Per pair, ``(n_target, n_source)``: 1 where the edge is ablated (not in ``kept``)."""
        kept = list(kept)
        flat = torch.ones(len(self.edges), device=self.clean.device)
        missing = [e for e in kept if e not in self._index]
        if missing:
            self.locate(missing[0])  # raises with the graph's layers
        if kept:
            flat[torch.tensor([self._index[e] for e in kept], dtype=torch.long)] = 0
        return [flat[p.offset:p.offset + p.n_edges].view(p.n_target, p.n_source) for p in self.pairs]

    def metric(self, kept: Collection[Edge] | None) -> torch.Tensor:
        """Per-example metric ``(B,)``: only ``kept`` edges carry clean values, every other one its
        reference mean; ``None``: the full model."""
        hooks = {}
        if kept is not None:
            for pair, mask in zip(self.pairs, self.masks(kept)):
                if bool(mask.any()):
                    hooks[pair.target] = replacing_hook(pair, pair.mean, mask)
        with self.scoped(), torch.no_grad():
            return self.evaluate(hooks)

    def __repr__(self) -> str:
        return (f"CNNGraph({' -> '.join([p.source for p in self.pairs] + [self.pairs[-1].target])}, "
                f"{len(self.edges)} edges, {len(self.clean)} examples, metric={self.metric_name}, "
                f"corrupted={self.corruption})")


def replacing_hook(pair: LayerPair, value: torch.Tensor, mask: torch.Tensor) -> Callable:
    """A forward hook on ``pair.target`` that feeds it ``value`` (its input's replacement)
    through the edges where ``mask`` is 1 and its actual input through every other edge."""
    def hook(_module, inputs, output):
        return output + pair.through(value - inputs[0], mask)
    return hook


def _class_index(value, classes: list[str], by_class: dict) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and not value.isdigit():
        if value not in classes:
            raise unknown("class", value, classes)
        return classes.index(value)
    index = int(value)
    if index not in by_class:
        raise InterpError(f"class {index} has no test images; classes present: {sorted(by_class)}")
    return index


def _class_name(index: int | None, classes: list[str]) -> str | None:
    if index is None:
        return None
    return classes[index] if index < len(classes) else str(index)
