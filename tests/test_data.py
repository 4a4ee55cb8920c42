import os

import pytest
import torch
from PIL import Image

from interp.data import load_image_data, load_image_folder
from interp.data.images import channel_stats
from interp.errors import InterpError


def _make_folder(root, classes=("cat", "dog"), n=3, size=(8, 8)):
    g = torch.Generator().manual_seed(0)
    for split in ("train", "test"):
        for c in classes:
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                arr = torch.randint(0, 256, (size[1], size[0], 3), generator=g, dtype=torch.uint8).numpy()
                Image.fromarray(arr).save(d / f"{i:04d}.png")
    return root


def test_image_folder_loads_and_caches(tmp_path, monkeypatch):
    root = _make_folder(tmp_path / "ds")
    data = load_image_folder(root, progress=False)
    assert data.classes == ["cat", "dog"]
    assert data.train_x.shape == (6, 3, 8, 8) and data.train_x.dtype == torch.uint8
    assert data.train_y.tolist() == [0, 0, 0, 1, 1, 1]
    first = Image.open(root / "train" / "cat" / "0000.png")
    assert torch.equal(data.train_x[0].permute(1, 2, 0), torch.from_numpy(__import__("numpy").array(first)))
    assert list((tmp_path / "cache").glob("imagefolder-*.safetensors"))

    from interp.data import images

    def no_decode(*a, **k):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(images, "_decode_one", no_decode)
    again = load_image_folder(root, progress=False)
    assert torch.equal(again.train_x, data.train_x) and again.mean == data.mean


def test_changed_folder_replaces_its_cache_entry(tmp_path):
    root = _make_folder(tmp_path / "ds")
    load_image_folder(root, progress=False)
    [old] = (tmp_path / "cache").glob("imagefolder-*.safetensors")
    other = _make_folder(tmp_path / "other")
    load_image_folder(other, progress=False)  # another folder's entry must survive

    Image.new("RGB", (8, 8), "red").save(root / "train" / "cat" / "0000.png")
    data = load_image_folder(root, progress=False)
    assert data.train_x[0, 0].unique().tolist() == [255]
    entries = sorted(p.name for p in (tmp_path / "cache").glob("imagefolder-*.safetensors"))
    assert old.name not in entries and len(entries) == 2
    assert any(name.startswith("imagefolder-other-") for name in entries)


def test_read_only_dataset_folder_is_fine(tmp_path):
    root = _make_folder(tmp_path / "ro")
    for dirpath, dirnames, filenames in os.walk(root):
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o444)
    load_image_folder(root, progress=False)
    assert not any(p.suffix == ".safetensors" for p in root.rglob("*"))


def test_missing_and_malformed_folders(tmp_path):
    with pytest.raises(InterpError, match="unknown dataset .*no folder at"):
        load_image_data(str(tmp_path / "nope"))
    (tmp_path / "flat").mkdir()
    with pytest.raises(InterpError, match="has no train/ or test/ subfolder"):
        load_image_folder(tmp_path / "flat")
    (tmp_path / "empty" / "train" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "test" / "a").mkdir(parents=True)
    with pytest.raises(InterpError, match="has no images"):
        load_image_folder(tmp_path / "empty")


def test_undecodable_image_is_named(tmp_path):
    root = _make_folder(tmp_path / "bad")
    bad = root / "test" / "dog" / "0001.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(InterpError, match=r"cannot decode image .*test/dog/0001\.png"):
        load_image_folder(root, progress=False)


def test_channel_stats():
    x = torch.zeros(4, 3, 2, 2, dtype=torch.uint8)
    x[:, 0] = 255
    mean, std = channel_stats(x)
    assert mean == (1.0, 0.0, 0.0)
    assert all(s < 1e-3 for s in std)


def test_shapes_subset():
    data = load_image_data("shapes", n_train=100, n_test=40)
    assert data.train_x.shape == (100, 3, 32, 32) and len(data.test_y) == 40
    assert len(data.classes) >= 10


def test_shared_cifar_folder_layout(shared_data):
    """The shared CIFAR-10 copy has the ImageFolder layout the loader expects (listing only: fast)."""
    from interp.data.images import _list_split

    classes, files = _list_split(shared_data / "cifar10-jpeg" / "test")
    assert len(classes) == 10 and len(files) == 10_000


@pytest.mark.slow
def test_shared_cifar_decodes(shared_data):
    data = load_image_folder(shared_data / "cifar10-jpeg", progress=False)
    assert data.train_x.shape == (50_000, 3, 32, 32) and data.test_x.shape == (10_000, 3, 32, 32)
