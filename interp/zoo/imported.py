"""Users' own image classifiers as model families: ``torchvision:ARCH`` and ``timm:NAME``.

An imported model is an ordinary run whose config names the family (``torchvision`` or
``timm``) and the architecture, so :func:`interp.runs.load_run` rebuilds it like any zoo
model and every command takes ``--run NAME`` (:mod:`interp.imports` writes the folder).
These families are not trained by ``interp train``: their weights come from the user.

Two things are done to every imported model, because analyses depend on them:

- in-place activations are switched off (``ReLU(inplace=True)`` after a conv overwrites
  the conv's output, so a hook on the conv would record the post-ReLU values, and a
  gradient through it fails); the arithmetic is unchanged;
- its layers are listed (``layer_names``): every conv and linear module by its own path
  (``layer3.1.conv2``) plus the blocks a circuits analysis looks at (``layer3.1``,
  ``features.10``), so ``--layer`` takes the model's own module names.

>>> model = build_model("torchvision", {"arch": "resnet18", "num_classes": 10})
>>> "layer3.1.conv2" in model.layer_names and "layer4" in model.layer_names
True
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..errors import InterpError, unknown
from .gpt import GPT
from .registry import register_model


@dataclass(frozen=True)
class TorchvisionConfig:
    arch: str = "resnet18"
    """A classifier in ``torchvision.models`` (``torchvision.models.list_models()``)."""
    num_classes: int = 1000


@dataclass(frozen=True)
class TimmConfig:
    arch: str = "resnet18"
    """A model name timm knows (``timm.list_models()``)."""
    num_classes: int = 1000


# Modules a feature visualisation or attribution does not address by themselves.
_PLUMBING = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Hardswish, nn.Sigmoid, nn.Dropout, nn.Identity, nn.Flatten,
             nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
             nn.AdaptiveMaxPool2d)


def discover_layer_names(model: nn.Module) -> list[str]:
    """The module paths worth analysing, in forward order of definition: every ``Conv2d`` and
    ``Linear``, plus the blocks (children of the model and of its top-level ``Sequential``s)
    that are not plumbing (activations, norms, pooling, dropout).

    >>> discover_layer_names(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2)))
    ['0', '3']
    """
    blocks: set[str] = set()
    for name, child in model.named_children():
        if not isinstance(child, _PLUMBING):
            blocks.add(name)
        if isinstance(child, nn.Sequential):
            blocks.update(f"{name}.{sub}" for sub, grandchild in child.named_children()
                          if not isinstance(grandchild, _PLUMBING))
    return [name for name, module in model.named_modules()
            if name and (isinstance(module, (nn.Conv2d, nn.Linear)) or name in blocks)]


def prepare_imported(model: nn.Module) -> nn.Module:
    """Switch off in-place activations and list the layers (see the module docstring)."""
    for module in model.modules():
        if getattr(module, "inplace", False) is True:
            module.inplace = False
    names = discover_layer_names(model)
    if not names:
        raise InterpError(f"{type(model).__name__} has no Conv2d or Linear module; interp's image analyses "
                          f"address conv and linear layers")
    model.layer_names = names  # an instance attribute: describe_layers reads model.layer_names
    return model


def classifier_name(model: nn.Module) -> str:
    """The path of the last ``Linear`` (or 1x1 ``Conv2d``) module: the classifier whose output
    size is the number of classes."""
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1)):
            last = name
    if last is None:
        raise InterpError(f"{type(model).__name__} has no Linear layer to read the number of classes from")
    return last


@register_model("torchvision", family="torchvision", task="image-classification", config=TorchvisionConfig,
                description="a torchvision classifier (interp import torchvision:ARCH)", trainable=False,
                arch="resnet18", num_classes=1000)
def torchvision_model(cfg: TorchvisionConfig) -> nn.Module:
    import torchvision

    names = torchvision.models.list_models(module=torchvision.models)
    if cfg.arch not in names:
        raise unknown("torchvision classifier", cfg.arch, names)
    # GoogLeNet and Inception-v3 carry auxiliary heads used only in training; imported weights
    # lose them (interp.imports drops their keys), and their scipy init is slow and overwritten.
    kwargs = {"aux_logits": False, "init_weights": False} if cfg.arch in ("googlenet", "inception_v3") else {}
    model = torchvision.models.get_model(cfg.arch, weights=None, num_classes=cfg.num_classes, **kwargs)
    return prepare_imported(model)


@register_model("timm", family="timm", task="image-classification", config=TimmConfig,
                description="a timm classifier (interp import timm:NAME; pip install 'interp[timm]')",
                trainable=False, arch="resnet18", num_classes=1000)
def timm_model(cfg: TimmConfig) -> nn.Module:
    timm = require_timm()
    if not timm.is_model(cfg.arch):
        raise unknown("timm model", cfg.arch, timm.list_models())
    return prepare_imported(timm.create_model(cfg.arch, pretrained=False, num_classes=cfg.num_classes))


def require_timm():
    try:
        import timm
    except ModuleNotFoundError:
        raise InterpError("timm is not installed; install the extra with: pip install 'interp[timm]'") from None
    return timm


# --------------------------------------------------------------------------- Hugging Face causal LMs


@dataclass(frozen=True)
class HFConfig:
    hf_config: dict
    """The model's Hugging Face config (``PretrainedConfig.to_dict()``)."""
    block_size: int = 1024
    vocab_size: int = 0
    n_layer: int = 0
    n_head: int = 0
    n_embd: int = 0


class HFCausalLM(nn.Module):
    """A Hugging Face causal LM with the interface of :class:`interp.zoo.gpt.GPT`: ``forward(ids)``
    returns logits, ``token_embedding`` is the input embedding, ``config.block_size`` the
    context and ``generate`` samples. Analyses that take our GPT take it unchanged; the
    TransformerLens bridge is booted from ``hf`` (:func:`interp.analysis.language.bridge.to_bridge`).
    """

    def __init__(self, hf: nn.Module, config: HFConfig):
        super().__init__()
        self.hf = hf
        self.config = config
        self.folder = None
        """The run's ``hf/`` folder (architecture config and tokenizer), set by ``load_run``."""
        self._tokenizer = None

    @property
    def tokenizer(self):
        """The tokenizer saved beside the model (``hf/`` in the run folder)."""
        if self._tokenizer is None:
            if self.folder is None:
                raise InterpError("this Hugging Face model has no run folder, so no tokenizer; load it with "
                                  "interp.load_run(NAME) after interp import hf:FOLDER --name NAME")
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)
        return self._tokenizer

    @property
    def token_embedding(self) -> nn.Module:
        return self.hf.get_input_embeddings()

    def forward(self, ids):
        return self.hf(input_ids=ids, use_cache=False).logits

    # The sampling loop only calls self(ids) and reads config.block_size: GPT's, shared.
    generate = GPT.generate


@register_model("hf", family="hf", task="language-model", config=HFConfig,
                description="a Hugging Face causal LM (interp import hf:FOLDER)", trainable=False,
                hf_config={"model_type": "gpt2", "n_layer": 1, "n_head": 1, "n_embd": 8, "vocab_size": 8,
                           "n_positions": 8}, block_size=8, vocab_size=8, n_layer=1, n_head=1, n_embd=8)
def hf_model(cfg: HFConfig) -> nn.Module:
    from transformers import AutoConfig, AutoModelForCausalLM

    settings = dict(cfg.hf_config)
    model_type = settings.pop("model_type", None)
    if not model_type:
        raise InterpError("the run's Hugging Face config has no model_type; import the model again")
    hf = AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **settings))
    return HFCausalLM(hf.eval(), cfg)
