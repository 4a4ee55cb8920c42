"""Downloads (CIFAR-10, Tiny Shakespeare, text8) against a fake server: no network is used.

``urllib.request.urlopen`` is replaced by a function that serves bytes from memory or
fails, so these tests prove the checks (checksum, size, atomic rename) and the messages.
"""

import hashlib
import io
import tarfile
import urllib.error
import urllib.request
import zipfile

import numpy as np
import pytest
import torch

from interp.data import cifar10, load_image_data
from interp.data.download import Remote, download
from interp.data.paths import data_dir
from interp.errors import InterpError

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def serve(monkeypatch, files: dict[str, bytes]) -> list[str]:
    """Answer urlopen from ``files`` (url -> bytes); return the list of urls asked for."""
    asked = []

    def urlopen(url, timeout=None):
        asked.append(url)
        if url not in files:
            raise urllib.error.URLError("no network in tests")
        return FakeResponse(files[url])

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return asked


def remote_for(data: bytes, url="https://example.org/file.bin") -> Remote:
    return Remote(url, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def test_download_checks_and_renames(tmp_path, monkeypatch):
    data = b"x" * 3_000_000  # several chunks
    remote = remote_for(data)
    serve(monkeypatch, {remote.url: data})
    path = download(remote, tmp_path / "sub" / "file.bin", what="the file", progress=False)
    assert path.read_bytes() == data
    assert [p.name for p in path.parent.iterdir()] == ["file.bin"]


@pytest.mark.parametrize("wrong", ["sha256", "size"])
def test_a_bad_download_leaves_nothing(tmp_path, monkeypatch, wrong):
    data = b"the real bytes"
    remote = remote_for(data)
    served = b"tampered bytes" if wrong == "sha256" else b"the real bytes, and more"
    serve(monkeypatch, {remote.url: served})
    with pytest.raises(InterpError, match="does not match the published" if wrong == "sha256" else "expected 14"):
        download(remote, tmp_path / "file.bin", what="the file", offline_hint="Do X instead.", progress=False)
    assert list(tmp_path.iterdir()) == []  # no file, no temporary left behind


def test_a_cut_connection_leaves_nothing(tmp_path, monkeypatch):
    import http.client

    class CutResponse(FakeResponse):
        def read(self, n=-1):
            raise http.client.IncompleteRead(b"partial", 100)

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: CutResponse(b"x" * 107))
    with pytest.raises(InterpError, match="could not download the file"):
        download(remote_for(b"x" * 107), tmp_path / "file.bin", what="the file", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_offline_error_names_what_and_the_way_out(tmp_path, monkeypatch):
    serve(monkeypatch, {})
    with pytest.raises(InterpError) as e:
        download(remote_for(b"a"), tmp_path / "f", what="the thing", offline_hint="Pass --local.", progress=False)
    assert "could not download the thing" in str(e.value) and str(e.value).endswith("Pass --local.")


# ------------------------------------------------------------------------------ CIFAR-10


def _batch(labels, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (len(labels), 3, 32, 32), dtype=np.uint8)
    records = np.concatenate([np.array(labels, dtype=np.uint8)[:, None], images.reshape(len(labels), -1)], axis=1)
    return records.tobytes(), images


def fake_cifar_archive(skip=(), truncate=None):
    """A tar.gz laid out as the binary release, with 2 images per batch; and its contents."""
    members, expected = {}, {}
    for i, name in enumerate([f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]):
        raw, images = _batch([i, 9 - i], seed=i)
        members[name], expected[name] = raw, (images, [i, 9 - i])
    members["batches.meta.txt"] = ("\n".join(CLASSES) + "\n\n").encode()
    members["readme.html"] = b"<p>not read</p>"
    if truncate:
        members[truncate] = members[truncate][:-5]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, raw in members.items():
            if name in skip:
                continue
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
    return buffer.getvalue(), expected


def test_cifar10_downloads_once_and_reads_the_binary_records(monkeypatch):
    archive, expected = fake_cifar_archive()
    remote = remote_for(archive, url=cifar10.CIFAR10_BINARY.url)
    monkeypatch.setattr(cifar10, "CIFAR10_BINARY", remote)
    asked = serve(monkeypatch, {remote.url: archive})

    data = load_image_data("cifar10", progress=False)
    assert data.classes == CLASSES
    assert data.train_x.shape == (10, 3, 32, 32) and data.train_x.dtype == torch.uint8
    assert data.train_y.tolist() == [0, 9, 1, 8, 2, 7, 3, 6, 4, 5]
    assert data.test_y.tolist() == [5, 4]
    images, _ = expected["data_batch_2.bin"]
    assert torch.equal(data.train_x[2:4], torch.from_numpy(images))  # red plane, then green, then blue
    assert torch.equal(data.test_x, torch.from_numpy(expected["test_batch.bin"][0]))

    serve(monkeypatch, {})  # offline now: the archive on disk is enough
    again = load_image_data("cifar10", progress=False)
    assert torch.equal(again.train_x, data.train_x) and asked == [remote.url]
    assert (data_dir() / "cifar10" / "cifar-10-binary.tar.gz").is_file()


def test_cifar10_offline_says_where_to_put_the_archive(monkeypatch, cli):
    serve(monkeypatch, {})
    code, _, err = cli("train", "tutorial", "--dataset", "cifar10", "--no-progress")
    assert code == 2 and "Traceback" not in err
    assert "could not download CIFAR-10" in err and "cifar-10-binary.tar.gz" in err
    assert "--dataset PATH" in err and not list((data_dir() / "cifar10").glob("*"))


@pytest.mark.parametrize("broken, message", [
    (dict(skip={"test_batch.bin"}), "lacks cifar-10-batches-bin/test_batch.bin"),
    (dict(truncate="data_batch_3.bin"), "data_batch_3.bin holds 6,141 bytes, not a whole number"),
])
def test_a_wrong_cifar_archive_is_named(broken, message):
    archive, _ = fake_cifar_archive(**broken)
    path = data_dir() / "cifar10" / "cifar-10-binary.tar.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(archive)
    with pytest.raises(InterpError, match=message):
        load_image_data("cifar10", progress=False)
    path.write_bytes(archive[:1000])
    with pytest.raises(InterpError, match="not a readable CIFAR-10 archive.*delete it"):
        load_image_data("cifar10", progress=False)


def test_cifar10_constants_are_the_published_release():
    # https://www.cs.toronto.edu/~kriz/cifar.html: 162 MB, md5 c32a1d4ab5d03f1284b67883e8d87530
    assert cifar10.CIFAR10_BINARY.url == "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    assert cifar10.CIFAR10_BINARY.size == 170_052_171 and len(cifar10.CIFAR10_BINARY.sha256) == 64


# ------------------------------------------------------------------------- text corpora


def test_tinyshakespeare_download_is_checked(monkeypatch):
    from interp.data.text import TINYSHAKESPEARE, tinyshakespeare_path

    serve(monkeypatch, {TINYSHAKESPEARE.url: b"First Citizen: not the real file\n"})
    with pytest.raises(InterpError, match="could not download Tiny Shakespeare.*expected 1,115,394"):
        tinyshakespeare_path(progress=False)
    assert not (data_dir() / "tinyshakespeare" / "input.txt").exists()


def test_word_corpus_offline_error_speaks_of_dataset(monkeypatch):
    from interp.data.words import load_word_corpus

    serve(monkeypatch, {})
    with pytest.raises(InterpError) as e:
        load_word_corpus("tinyshakespeare", progress=False)
    message = str(e.value)
    assert message.startswith("could not download Tiny Shakespeare from https://")
    assert message.endswith("Without internet, pass a local copy: --dataset ../shared/data/tinyshakespeare.txt "
                            "(or any text file)")
    assert "--text" not in message


def test_text8_is_downloaded_unzipped_and_the_zip_removed(monkeypatch):
    from interp.data import words

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("text8", " anarchism originated as a term of abuse")
    monkeypatch.setattr(words, "TEXT8", Remote(words.TEXT8.url, size=len(buffer.getvalue())))
    serve(monkeypatch, {words.TEXT8.url: buffer.getvalue()})
    path = words.text8_path(progress=False)
    assert path.read_text().split()[:2] == ["anarchism", "originated"]
    assert [p.name for p in path.parent.iterdir()] == ["text8"]
