"""A result of several files (npz, png, json) appears whole or not at all: a full disk at its
last file leaves the previous result byte-identical (issue #14)."""

from __future__ import annotations

import errno
import os

import pytest
import torch

import interp.io
from interp.errors import InterpError
from interp.io import atomic_group, write_bytes, write_json


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _fail_at_call(monkeypatch, n: int):
    real, calls = interp.io._write_file, []

    def write(file, data):
        calls.append(file)
        if len(calls) == n:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
        return real(file, data)
    monkeypatch.setattr(interp.io, "_write_file", write)


def test_a_group_appears_together_or_not_at_all(tmp_path, monkeypatch):
    write_bytes(tmp_path / "r.npz", b"old arrays")
    write_json(tmp_path / "r.json", {"kind": "x", "v": 1})
    before = _snapshot(tmp_path)
    _fail_at_call(monkeypatch, 2)
    with pytest.raises(InterpError, match="disk full"):
        with atomic_group():
            write_bytes(tmp_path / "r.npz", b"new arrays")
            write_json(tmp_path / "r.json", {"kind": "x", "v": 2})
    assert _snapshot(tmp_path) == before  # not the new npz beside the old json
    monkeypatch.undo()
    with atomic_group():
        write_bytes(tmp_path / "r.npz", b"new arrays")
        assert (tmp_path / "r.npz").read_bytes() == b"old arrays"  # not yet: at the end of the group
        write_json(tmp_path / "r.json", {"kind": "x", "v": 2})
    assert (tmp_path / "r.npz").read_bytes() == b"new arrays"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_an_attribution_saved_over_a_full_disk_leaves_the_previous_one(tiny_run, tmp_path, monkeypatch):
    from interp.analysis.attribution.attribute import attribute
    from interp.results.attribution import load_attribution, save_attribution

    images = torch.rand(1, *tiny_run.input_shape, generator=torch.Generator().manual_seed(0))
    first = attribute(tiny_run, images, methods="saliency")
    paths = save_attribution(first, tmp_path, name="probe")
    before = _snapshot(tmp_path)
    second = attribute(tiny_run, images.flip(-1), methods="saliency")  # same settings, other maps
    _fail_at_call(monkeypatch, 2)  # the npz goes through, the json hits the full disk
    with pytest.raises(InterpError, match="disk full"):
        save_attribution(second, tmp_path, name="probe")
    assert _snapshot(tmp_path) == before
    monkeypatch.undo()
    torch.testing.assert_close(load_attribution(paths["json"]).maps["saliency"], first.maps["saliency"])
