"""``interp import``: a user's own model as an ordinary run folder.

``import_model("torchvision:resnet18", "my-resnet", weights="resnet18.safetensors")`` writes
``models/my-resnet/`` (config.json naming the source, preprocessing and classes; the weights
as ``model.safetensors``), so every command and the report take ``--run my-resnet``.

Sources: ``torchvision:ARCH`` and ``timm:NAME`` (image classifiers; :mod:`interp.zoo.imported`),
``hf:FOLDER`` (a Hugging Face causal LM saved with ``save_pretrained``, with its tokenizer;
or a hub id with ``download=True``), analysed through TransformerLens's ``boot_transformers``.
Weights come from ``weights`` (a state-dict file: safetensors, or a torch file read with
``weights_only=True``, never unpickled), from the library's own download only with
``download=True``, or ``weights="random"`` (an untrained copy, for tests and smoke runs).
Preprocessing (mean, std, resize, crop) comes from the library's metadata for the
architecture (torchvision's weight enums, timm's pretrained config) unless given.

>>> run = import_model("torchvision:resnet18", "resnet", weights="random", num_classes=10)
>>> run.layer("layer3.1.conv2").units
256
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import InterpError, unknown

SOURCES = ("torchvision", "timm", "hf")
DROPPED_PREFIXES = {"googlenet": ("aux1.", "aux2."), "inception_v3": ("AuxLogits.",)}
"""Keys of auxiliary training heads, present in full checkpoints, that the imported model lacks."""


@dataclass(frozen=True)
class Preprocessing:
    """How images reach the model: resized (shorter side) to ``resize``, centre-cropped to
    ``crop``, then ``(x - mean) / std`` per channel."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: int
    crop: int


def parse_source(source: str) -> tuple[str, str]:
    """``"torchvision:resnet18"`` -> ``("torchvision", "resnet18")``, or a clear error.

    >>> parse_source("timm:vit_tiny_patch16_224")
    ('timm', 'vit_tiny_patch16_224')
    """
    family, sep, arch = source.partition(":")
    if not sep or not arch:
        raise InterpError(f"bad source {source!r}: expected FAMILY:NAME with FAMILY one of {', '.join(SOURCES)} "
                          f"(e.g. torchvision:resnet18)")
    if family not in SOURCES:
        raise unknown("model source", family, SOURCES)
    return family, arch


def library_preprocessing(family: str, arch: str) -> tuple[Preprocessing, list[str] | None]:
    """The preprocessing and class names the library ships for ``arch`` (no download), or
    ImageNet's defaults when it ships none."""
    imagenet = Preprocessing((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 256, 224)
    if family == "torchvision":
        from torchvision.models import get_model_weights

        try:
            weights = get_model_weights(arch).DEFAULT
        except (ValueError, KeyError):
            return imagenet, None
        t = weights.transforms()
        return (Preprocessing(tuple(t.mean), tuple(t.std), int(t.resize_size[0]), int(t.crop_size[0])),
                list(weights.meta.get("categories") or []) or None)
    from .zoo.imported import require_timm

    timm = require_timm()
    cfg = timm.models.get_pretrained_cfg(arch)
    if cfg is None:
        return imagenet, None
    crop = int(cfg.input_size[-1])
    return Preprocessing(tuple(cfg.mean), tuple(cfg.std), int(round(crop / cfg.crop_pct)), crop), None


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from a safetensors file or a torch file of plain tensors (``weights_only``).

    A checkpoint that wraps the weights (``{"state_dict": ...}``, ``{"model": ...}``) is
    unwrapped and DataParallel's ``module.`` prefix removed, as users' files often have them.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise InterpError(f"weights file {path} does not exist; give a state-dict file (.safetensors or .pt/.pth)")
    from .io import load_tensor_file

    state = load_tensor_file(path, lambda why: f"{path} cannot be read as plain tensors ({why}); interp never "
                                               f"unpickles arbitrary objects. Save the weights as a state dict: "
                                               f"torch.save(model.state_dict(), 'w.pt') or "
                                               f"safetensors.torch.save_file(...)")
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InterpError(f"{path} holds a {type(state).__name__}, not a state dict of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def library_weights(family: str, arch: str, *, progress: bool = True) -> dict[str, torch.Tensor]:
    """The library's pretrained weights for ``arch`` (downloaded into its own cache once)."""
    try:
        if family == "torchvision":
            from torchvision.models import get_model_weights

            return dict(get_model_weights(arch).DEFAULT.get_state_dict(progress=progress))
        from .zoo.imported import require_timm

        return require_timm().create_model(arch, pretrained=True).state_dict()
    except (OSError, RuntimeError) as e:  # offline, a proxy, a truncated download
        raise InterpError(f"could not download the {family} weights of {arch} ({type(e).__name__}: {e}); "
                          f"download them elsewhere and pass --weights FILE") from None


def _classifier_size(family: str, arch: str, weights: dict[str, torch.Tensor] | None, default: int) -> int:
    """The number of classes the weights' classifier has (a fine-tuned ResNet: 10, not 1000)."""
    from .zoo import build_model
    from .zoo.imported import classifier_name

    if weights is None:
        return default
    head = classifier_name(build_model(family, {"arch": arch, "num_classes": 1000})) + ".weight"
    return int(weights[head].shape[0]) if head in weights else default


def read_classes(path: str | os.PathLike, n: int) -> list[str]:
    """Class names from a text file, one per line (blank lines skipped); there must be ``n``."""
    path = Path(path).expanduser()
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise InterpError(f"cannot read class names from {path}: {e}") from None
    if len(names) != n:
        raise InterpError(f"{path} names {len(names)} classes but the model's classifier has {n} outputs; "
                          f"give one name per line, {n} lines")
    return names


def import_model(source: str, name: str, *, weights: str | os.PathLike | None = None, download: bool = False,
                 classes: str | os.PathLike | list[str] | None = None, dataset: str | None = None,
                 num_classes: int | None = None, preprocessing: Preprocessing | None = None,
                 overwrite: bool = False, root: Path | None = None, progress: bool = True) -> Any:
    """Write ``models/NAME`` for ``source`` and return its :class:`~interp.runs.Run`.

    ``weights``: a state-dict file or ``"random"``; ``download=True`` fetches the library's
    own. ``classes``: a file with one name per line, or a list (default: the library's names
    when the classifier has as many outputs, else ``class0``...). ``dataset``: an image folder
    (``test/<class>/*`` or ``<class>/*``) used by examples, attribution and claims.
    """
    from .config import DataConfig, RunConfig
    from .runs import check_run_name, check_weights, create_run, load_run, models_dir
    from .zoo import build_model

    family, arch = parse_source(source)
    check_run_name(name)
    if family == "hf":
        return import_hf(arch, name, download=download, overwrite=overwrite, root=root, progress=progress,
                         weights=weights)
    if weights is None and not download:
        raise InterpError(f"no weights for {source}: give --weights FILE (a state dict), --download for the "
                          f"library's own, or --weights random for an untrained copy")
    if weights is not None and download:
        raise InterpError("give --weights or --download, not both")
    lib_pre, lib_classes = library_preprocessing(family, arch)
    state = None
    if download:
        state = library_weights(family, arch, progress=progress)
    elif str(weights) != "random":
        state = read_state_dict(weights)
        state = {k: v for k, v in state.items() if not k.startswith(DROPPED_PREFIXES.get(arch, ("\0",)))}
    n = num_classes or _classifier_size(family, arch, state, len(lib_classes or []) or 1000)
    model = build_model(family, {"arch": arch, "num_classes": n})
    if state is not None:
        check_weights(model, state, Path(weights or f"{family} {arch} weights"))
        model.load_state_dict(state)
    if isinstance(classes, (str, os.PathLike)):
        names = read_classes(classes, n)
    elif classes is not None:
        names = [str(c) for c in classes]
        if len(names) != n:
            raise InterpError(f"{len(names)} class names for a classifier with {n} outputs; give {n}")
    else:
        names = lib_classes if lib_classes and len(lib_classes) == n else [f"class{i}" for i in range(n)]
    pre = preprocessing or lib_pre
    data = DataConfig(name=dataset or "none", input_shape=(3, pre.crop, pre.crop), classes=tuple(names),
                      mean=tuple(pre.mean), std=tuple(pre.std), options={"resize": pre.resize, "crop": pre.crop})
    config = RunConfig(model=family, family=family, task="image-classification",
                       model_config={"arch": arch, "num_classes": n}, data=data)
    where = "random (untrained)" if state is None and not download else \
        ("the library's pretrained weights" if download else str(Path(weights).expanduser().resolve()))
    path = (Path(root) if root is not None else models_dir()) / name
    create_run(path, config, model, summary={"source": source, "weights": where, "classes": len(names)},
               overwrite=overwrite)
    if progress:
        print(f"Imported {source} ({where}) as {path}", file=sys.stderr)
    return load_run(path)


def import_hf(folder_or_id: str, name: str, *, download: bool = False, overwrite: bool = False,
              root: Path | None = None, progress: bool = True, weights: Any = None) -> Any:
    """A Hugging Face causal LM (config, weights, tokenizer) as ``models/NAME``.

    The folder is read offline (``local_files_only``) unless ``download``; weights load
    through transformers' safe loaders (safetensors, or torch files with ``weights_only``).
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from .config import DataConfig, RunConfig
    from .runs import create_run, load_run, models_dir
    from .zoo.imported import HFCausalLM, HFConfig

    if weights is not None:
        raise InterpError("--weights does not apply to hf: sources; the folder holds the weights")
    local = Path(folder_or_id).expanduser()
    if not download and not local.is_dir():
        raise InterpError(f"no folder {local}; give a folder saved with save_pretrained (config.json, weights, "
                          f"tokenizer files), or a hub id with --download")
    where = str(local.resolve()) if local.is_dir() else folder_or_id
    offline = {"local_files_only": not download}
    try:
        hf_config = AutoConfig.from_pretrained(where, **offline)
    except (OSError, ValueError) as e:
        raise InterpError(f"{where} is not a Hugging Face model folder ({e.__class__.__name__}: "
                          f"{str(e).splitlines()[0]})") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, **offline)
    except (OSError, ValueError, TypeError) as e:
        raise InterpError(f"{where} has no tokenizer interp can load ({e.__class__.__name__}); save one beside the "
                          f"model: tokenizer.save_pretrained(FOLDER)") from None
    # transformers 5 builds an empty tokenizer for a folder that has none: one token is none.
    if len(tokenizer) <= 1 or len(tokenizer) > hf_config.vocab_size:
        raise InterpError(f"{where} has no tokenizer for this model ({len(tokenizer)} tokens for a "
                          f"{hf_config.vocab_size}-token vocabulary); save one beside the model: "
                          f"tokenizer.save_pretrained(FOLDER)")
    try:
        hf = AutoModelForCausalLM.from_pretrained(where, **offline).eval()
    except (OSError, ValueError) as e:
        raise InterpError(f"cannot load the causal-LM weights of {where} ({e.__class__.__name__}: "
                          f"{str(e).splitlines()[0]})") from None
    block = int(getattr(hf_config, "n_positions", 0) or getattr(hf_config, "max_position_embeddings", 0) or 1024)
    try:  # PretrainedConfig maps these names onto each architecture's own (n_layer, num_layers, ...)
        shape = {"n_layer": int(hf_config.num_hidden_layers), "n_head": int(hf_config.num_attention_heads),
                 "n_embd": int(hf_config.hidden_size)}
    except AttributeError as e:
        raise InterpError(f"{where}: the config does not say its {e.name} ; interp reads transformers' standard "
                          f"num_hidden_layers, num_attention_heads and hidden_size") from None
    cfg = HFConfig(hf_config=hf_config.to_diff_dict() | {"model_type": hf_config.model_type},
                   block_size=block, vocab_size=int(hf_config.vocab_size), **shape)
    model = HFCausalLM(hf, cfg)
    config = RunConfig(model="hf", family="hf", task="language-model",
                       model_config={"hf_config": cfg.hf_config, "block_size": block, "vocab_size": cfg.vocab_size,
                                     **shape}, data=DataConfig(name="none"))

    def save_tokenizer(folder: Path) -> None:
        tokenizer.save_pretrained(str(folder / "hf"))
        hf_config.save_pretrained(str(folder / "hf"))  # what boot_transformers reads the architecture from

    path = (Path(root) if root is not None else models_dir()) / name
    create_run(path, config, model, summary={"source": f"hf:{folder_or_id}", "weights": where},
               overwrite=overwrite, extra=save_tokenizer)
    if progress:
        print(f"Imported hf:{folder_or_id} as {path}", file=sys.stderr)
    return load_run(path)
