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


def _bad_files(root):
    """A truncated PNG, a text file, a decompression bomb (a tiny file claiming 40,000 x 40,000 px)
    and a 16-bit greyscale image (a mode most code paths do not expect): the last one decodes."""
    good = (root / "train" / "cat" / "0000.png").read_bytes()
    (root / "train" / "cat" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "train" / "dog" / "text.png").write_bytes(b"not a png at all")
    Image.new("1", (40_000, 40_000)).save(root / "test" / "dog" / "bomb.png", optimize=True)
    Image.fromarray((torch.arange(64, dtype=torch.int32).view(8, 8) * 1000).numpy().astype("uint16")).save(
        root / "test" / "cat" / "grey16.png")


def test_every_kind_of_bad_image_is_named_and_stops_by_default(tmp_path):
    root = _make_folder(tmp_path / "bad")
    _bad_files(root)
    with pytest.raises(InterpError, match=r"cannot decode image .*(truncated|text)\.png.*--skip-bad-images"):
        load_image_folder(root, progress=False)


def test_bad_images_are_skipped_when_asked(tmp_path, capsys):
    root = _make_folder(tmp_path / "bad")
    _bad_files(root)
    data = load_image_folder(root, progress=False, skip_bad=True)
    assert len(data.train_x) == 6 and len(data.test_x) == 7  # 16-bit grey decodes; 3 bad files left out
    assert len(data.train_y) == 6 and len(data.test_y) == 7
    err = capsys.readouterr().err
    assert "bomb.png" in err and "DecompressionBombError" in err and "truncated.png" in err
    assert "3 unreadable image(s) left out" in err
    # the cache of a skipping load is its own: a strict load still stops
    with pytest.raises(InterpError, match="cannot decode image"):
        load_image_folder(root, progress=False)


def test_a_bomb_as_the_first_image_is_named(tmp_path):
    root = _make_folder(tmp_path / "bomb")
    for f in (root / "train" / "cat").iterdir():
        f.unlink()
    Image.new("1", (40_000, 40_000)).save(root / "train" / "cat" / "0000.png", optimize=True)
    with pytest.raises(InterpError, match=r"0000\.png \(the first training image.*DecompressionBombError"):
        load_image_folder(root, progress=False)


def test_a_folder_too_large_to_decode_is_refused_before_decoding(tmp_path, monkeypatch):
    root = _make_folder(tmp_path / "big", size=(64, 64))
    monkeypatch.setenv("INTERP_MEMORY_BUDGET", "100K")
    with pytest.raises(InterpError, match=r"decoding 12 images of 64x64 px .* over the memory budget of "
                                          r"100 KiB \(\$INTERP_MEMORY_BUDGET"):
        load_image_folder(root, progress=False)


def test_memory_budget_parsing(monkeypatch):
    from interp.budget import memory_budget, parse_size

    assert parse_size("8G") == 8 << 30 and parse_size("512M") == 512 << 20 and parse_size("1000") == 1000
    assert parse_size("2GiB") == 2 << 30
    for bad in ("lots", "-1G", "0", "nanG", "infG"):
        with pytest.raises(InterpError, match="INTERP_MEMORY_BUDGET"):
            parse_size(bad)
    monkeypatch.delenv("INTERP_MEMORY_BUDGET", raising=False)
    assert memory_budget() > 0


def test_train_skip_bad_images_flag(tmp_path, cli):
    root = _make_folder(tmp_path / "bad", size=(32, 32), n=4)
    _bad_files(root)
    code, out, err = cli("train", "tutorial", "--dataset", str(root), "--epochs", "1", "--no-progress",
                         "--device", "cpu")
    assert code == 2 and "Traceback" not in err and "--skip-bad-images" in err
    code, out, err = cli("train", "tutorial", "--dataset", str(root), "--epochs", "1", "--no-progress",
                         "--device", "cpu", "--skip-bad-images", "--name", "skipped")
    assert code == 0, err
    from interp.runs import load_run

    assert load_run("skipped").config.data.skip_bad_images is True


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
