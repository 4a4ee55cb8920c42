"""Images for an imported classifier: a folder of labelled images in the model's own preprocessing.

An imported model (a torchvision ResNet, a timm ViT) was trained elsewhere, so its data is
an evaluation set: ``FOLDER/test/<class>/*``, ``FOLDER/val/<class>/*`` or ``FOLDER/<class>/*``.
Every image is resized (shorter side to ``resize``) and centre-cropped to ``crop``, as the
model's library does, and the folder's class names are matched to the model's: by name
(case, ``_`` and ``-`` ignored: ``golden_retriever`` is ``golden retriever``) when every
folder names one of the model's classes, else by sorted order when the counts agree (the
ImageFolder convention a fine-tuned model was trained with), else an error.

>>> data = load_evaluation_folder("~/imagenet-sample", classes=run.classes, resize=256, crop=224)
>>> data.test_x.shape[1:], len(data.train_x)
(torch.Size([3, 224, 224]), 0)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from ..errors import InterpError
from .images import IMAGE_SUFFIXES, BadImage, ImageData, _decode_errors, _list_split


def _split_folder(path: Path) -> Path:
    for name in ("test", "val", "validation"):
        if (path / name).is_dir():
            return path / name
    return path


def _canonical(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


def match_classes(folder_classes: list[str], model_classes: list[str]) -> list[int]:
    """For each folder class, the index of the model's class it is (see the module docstring).

    >>> match_classes(["cat", "golden_retriever"], ["golden retriever", "cat", "dog"])
    [1, 0]
    """
    index = {_canonical(c): i for i, c in enumerate(model_classes)}
    found = [index.get(_canonical(c)) for c in folder_classes]
    if all(i is not None for i in found):
        return found
    if len(folder_classes) == len(model_classes):
        return list(range(len(model_classes)))
    missing = [c for c, i in zip(folder_classes, found) if i is None]
    raise InterpError(f"the image folder's class {missing[0]!r} is not one of the model's {len(model_classes)} "
                      f"classes, and the folder has {len(folder_classes)} classes, not {len(model_classes)}; "
                      f"name the class folders after the model's classes (interp import --classes FILE sets them)")


def _decode_fitted(path: str, resize: int, crop: int) -> torch.Tensor:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            scale = resize / min(w, h)
            im = im.resize((max(crop, round(w * scale)), max(crop, round(h * scale))), Image.BILINEAR)
            left, top = (im.size[0] - crop) // 2, (im.size[1] - crop) // 2
            im = im.crop((left, top, left + crop, top + crop))
            return torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).view(crop, crop, 3)
    except _decode_errors() as e:
        raise BadImage(f"cannot decode image {path}: {type(e).__name__}: {e}") from None


def load_evaluation_folder(path: str | os.PathLike, *, classes: list[str], resize: int, crop: int,
                           mean: tuple[float, ...], std: tuple[float, ...], progress: bool = True,
                           skip_bad: bool = False) -> ImageData:
    """The folder's images as the test split (the train split is empty), labelled with the
    model's class indices."""
    from tqdm.auto import tqdm

    from ..budget import check_memory

    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise InterpError(f"image folder {root} does not exist; give a folder of <class>/*.jpg (or test/<class>/*)")
    folder = _split_folder(root)
    folder_classes, files = _list_split(folder)
    if not files:
        raise InterpError(f"{folder} has no images in class subfolders (expected <class>/*.jpg with one of "
                          f"{', '.join(sorted(IMAGE_SUFFIXES))})")
    labels = match_classes(folder_classes, classes)
    check_memory(len(files) * crop * crop * 3 * 2, f"decoding {len(files):,} images at {crop}x{crop} px",
                 hint="use a smaller sample of the folder")
    images, targets = [], []
    for file, label in tqdm(files, desc="decode", unit="img", disable=not progress or None, leave=False):
        try:
            images.append(_decode_fitted(file, resize, crop))
        except BadImage as e:
            if not skip_bad:
                raise BadImage(f"{e}. Remove or replace the file, or skip unreadable images with "
                               f"--skip-bad-images") from None
            print(f"warning: skipped {e}", file=sys.stderr)
            continue
        targets.append(labels[label])
    if not images:
        raise InterpError(f"no readable images in {folder}")
    test_x = torch.stack(images).permute(0, 3, 1, 2).contiguous()
    empty = torch.empty(0, 3, crop, crop, dtype=torch.uint8)
    return ImageData(str(root), empty, torch.empty(0, dtype=torch.int64), test_x,
                     torch.tensor(targets, dtype=torch.int64), list(classes), tuple(mean), tuple(std))
