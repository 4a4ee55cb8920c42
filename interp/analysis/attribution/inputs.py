"""The images an attribution explains: dataset images by index, or an image file.

These read input data (a run's dataset, a PNG or JPEG), not saved results; the saved
attribution results are read by :mod:`interp.results.attribution`.

>>> images, labels = load_dataset_images(run, [3, 4, 5])         # uint8 test images and labels
>>> image = read_image("cat.png", run.input_shape)               # (1, C, H, W) uint8
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ...errors import InterpError, unknown


def load_dataset_images(run: Any, indices: Sequence[int], split: str = "test", *, data: Any = None,
                        progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images and labels of dataset examples ``indices`` from ``split`` (test or train).

    ``data`` may be an already loaded :class:`~interp.data.ImageData` (saves reloading).
    """
    if split not in ("test", "train"):
        raise unknown("split", split, ["test", "train"])
    data = data if data is not None else run.load_data(progress=progress, split="test" if split == "test" else "both")
    x, y = (data.test_x, data.test_y) if split == "test" else (data.train_x, data.train_y)
    for i in indices:
        if not 0 <= int(i) < len(x):
            raise InterpError(f"index {i} is out of range: the {split} split has {len(x)} images (0-{len(x) - 1})")
    idx = torch.as_tensor([int(i) for i in indices], dtype=torch.long)
    return x[idx], y[idx]


def read_image(path: str | Path, input_shape: Sequence[int], *,
               notice: Callable[[str], None] | None = None) -> torch.Tensor:
    """An image file as a uint8 (1, C, H, W) tensor in the model's input shape.

    A missing or unreadable file is an :class:`InterpError` naming it; an image of
    another size is resized (bilinear) with a notice, since resizing changes what the
    model sees.
    """
    from PIL import Image, UnidentifiedImageError

    notice = notice or (lambda text: print(text, file=sys.stderr))
    path = Path(path).expanduser()
    c, h, w = input_shape
    if not path.is_file():
        raise InterpError(f"image file {path} not found" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        with Image.open(path) as img:
            img = img.convert("L" if c == 1 else "RGB")
            img.load()
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise InterpError(f"cannot read image file {path}: {e}") from None
    if img.size != (w, h):
        notice(f"note: {path} is {img.size[0]}x{img.size[1]} px; the model expects {w}x{h} px, "
               f"so it was resized to {w}x{h}")
        img = img.resize((w, h), Image.BILINEAR)
    array = np.asarray(img, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0).contiguous()

