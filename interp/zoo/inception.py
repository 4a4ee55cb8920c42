"""InceptionV1 (GoogLeNet as in Lucid), the model of OpenAI Microscope and the Circuits articles.

Built from Lucent's modelzoo port, with Lucid's layer names (``conv2d0`` ... ``mixed3b``
... ``mixed5b``, ``softmax2_pre_activation_matmul`` for the logits). It is a pretrained
model, not a trainable one: it is a pretrained source (:mod:`interp.zoo.pretrained`), and
``load_run("inceptionv1")`` returns a :class:`~interp.runs.Run` for it (when no run folder of
that name exists).

Weights (``inception5h.pth``, Lucid's weights converted by ProGamerGov) come from, in order:
``weights=PATH`` (the .pth, read with ``torch.load(weights_only=True)``, or a
.safetensors file), the torch hub cache (``$TORCH_HOME/hub/checkpoints/inception5h.pth``),
or a download, only with ``download=True``. ``weights="random"`` builds it untrained (for
tests and smoke runs). Images are [0, 1] RGB at 224 px; the run's ``normalize`` maps
them to Lucid's range ``x * 255 - 117``, as Lucent's ``render_vis`` does.

>>> run = interp.load_run("inceptionv1", weights="~/Downloads/inception5h.pth")
>>> run.layer("mixed4a").units
508
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from lucent.modelzoo.inceptionv1.InceptionV1 import InceptionV1 as LucentInceptionV1

from ..errors import InterpError

LAYERS = ("conv2d0", "conv2d1", "conv2d2", "mixed3a", "mixed3b", "mixed4a", "mixed4b", "mixed4c", "mixed4d",
          "mixed4e", "mixed5a", "mixed5b", "softmax2_pre_activation_matmul")
WEIGHTS_FILE = "inception5h.pth"
WEIGHTS_URL = "https://github.com/ProGamerGov/pytorch-old-tensorflow-models/raw/master/inception5h.pth"
INPUT_SHAPE = (3, 224, 224)
# Lucid's InceptionV1 takes pixels in [-117, 138]: x * 255 - 117 == (x - 117/255) / (1/255)
MEAN = (117 / 255,) * 3
STD = (1 / 255,) * 3


class InceptionV1(LucentInceptionV1):
    """Lucent's InceptionV1 that lists Lucid's layer names (the class name stays
    ``InceptionV1``, so Lucent's own ``render_vis`` still recognises it)."""

    # Lucid layer name -> the module holding its weights (conv2d0 is a ReLU after a conv)
    layer_weights = {name: f"{name}_pre_relu_conv" for name in ("conv2d0", "conv2d1", "conv2d2")}

    @property
    def layer_names(self) -> list[str]:
        return list(LAYERS)


def build_inceptionv1() -> InceptionV1:
    """InceptionV1 with random weights."""
    return InceptionV1(pretrained=False)  # never let Lucent download by itself


def hub_weights_path() -> Path:
    """Where torch hub keeps the weights: ``$TORCH_HOME/hub/checkpoints/inception5h.pth``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors or a .pth file, never unpickling arbitrary objects."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InterpError(f"InceptionV1 weights file {path} does not exist; give the path of {WEIGHTS_FILE} "
                          f"(or a .safetensors of it), or use --download")
    from ..io import load_tensor_file

    state = load_tensor_file(path, lambda why: f"{path} is not a readable InceptionV1 weights file ({why}: not a "
                                               f"checkpoint of plain tensors, or corrupt or truncated); download "
                                               f"it again (--download) or give another file")
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InterpError(f"{path} does not hold a state dict of tensors; expected Lucent's {WEIGHTS_FILE}")
    return state


def load_state(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` strictly, with one clear error for wrong keys or shapes."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            detail.append(f"{len(wrong)} of the wrong shape (e.g. {k}: {tuple(state[k].shape)}, "
                          f"expected {tuple(expected[k].shape)})")
        raise InterpError(f"{source} does not hold InceptionV1 weights: {'; '.join(detail)} tensors. "
                          f"Expected Lucent's {WEIGHTS_FILE}")
    model.load_state_dict({k: v.float() for k, v in state.items()})


def pretrained_inceptionv1(weights: str | os.PathLike | None = None, *, download: bool = False,
                           device: str | torch.device = "cpu", progress: bool = True):
    """Pretrained InceptionV1 as a :class:`~interp.zoo.pretrained.Pretrained` (see the module docstring)."""
    from ..config import DataConfig, RunConfig
    from ..device import resolve_device
    from .pretrained import Pretrained

    model = build_inceptionv1()
    if weights is not None and str(weights) == "random":
        source = "random"
    else:
        if weights is not None:
            path = Path(weights).expanduser()
        else:
            path = hub_weights_path()
            if not path.is_file():
                if not download:
                    raise InterpError(
                        f"InceptionV1 needs its pretrained weights, and none were given or found in the torch hub "
                        f"cache ({path}). Pass --weights PATH ({WEIGHTS_FILE} or a .safetensors of it), or "
                        f"--download to fetch them (27 MB) from {WEIGHTS_URL}; --weights random builds it untrained")
                _download(path, progress)
        load_state(model, read_state_dict(path), str(path))
        source = str(path)
    device = resolve_device(device)
    model.to(device).eval()
    config = RunConfig(model="inceptionv1", family="inception", task="image-classification",
                       model_config={"weights": source},
                       data=DataConfig(name="imagenet", input_shape=INPUT_SHAPE, mean=MEAN, std=STD))
    return Pretrained(model, config, {"weights": source, "source": "lucent.modelzoo.inceptionv1"})


def _download(path: Path, progress: bool) -> None:
    print(f"Downloading InceptionV1 weights from {WEIGHTS_URL} into {path} ...", file=sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(WEIGHTS_URL, str(path), progress=progress)
    except Exception as e:  # network errors come in many types
        raise InterpError(f"could not download the InceptionV1 weights ({e}); download {WEIGHTS_URL} by hand "
                          f"and pass it with --weights PATH") from None
