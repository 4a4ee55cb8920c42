"""The thread policy (interp.threads) and precision=auto (interp.device)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import interp.device as device
from interp import threads
from interp.errors import InterpError

REAL_NATIVE_BF16 = device.native_bf16  # conftest replaces it for the session once tests run


@pytest.fixture
def fresh_policy(monkeypatch):
    monkeypatch.setattr(threads, "_policy", None)
    monkeypatch.setattr(threads, "_pins", 0)
    for name in (threads.ENV, "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_auto_uses_the_cores_no_other_process_is_using(fresh_policy, monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    monkeypatch.setattr(threads, "busy_elsewhere", lambda **kw: 0)
    assert threads.configure_threads().threads == 4 and torch.get_num_threads() == 4
    monkeypatch.setattr(threads, "busy_elsewhere", lambda **kw: 3)
    policy = threads.configure_threads()
    assert (policy.threads, policy.busy_elsewhere, policy.source) == (1, 3, "auto")
    monkeypatch.setattr(threads, "busy_elsewhere", lambda **kw: 9)
    assert threads.configure_threads().threads == 1  # never fewer than one


def test_adapt_follows_the_load_at_most_once_a_second(fresh_policy, monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    load = {"busy": 0}
    monkeypatch.setattr(threads, "busy_elsewhere", lambda **kw: load["busy"])
    threads.configure_threads()
    assert torch.get_num_threads() == 2
    load["busy"] = 2
    threads.adapt()
    assert torch.get_num_threads() == 2  # checked less than a second ago
    monkeypatch.setattr(threads, "_last_check", 0.0)
    threads.adapt()
    assert torch.get_num_threads() == 1
    with threads.pinned(2):  # code that pins a count is left alone
        monkeypatch.setattr(threads, "_last_check", 0.0)
        threads.adapt()
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == 1
    load["busy"] = 0
    monkeypatch.setattr(threads, "_last_check", 0.0)
    threads.adapt()
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("where", ["argument", "INTERP_THREADS", "OMP_NUM_THREADS"])
def test_an_explicit_count_wins_and_is_never_adapted(fresh_policy, monkeypatch, where):
    monkeypatch.setattr(threads, "busy_elsewhere", lambda **kw: pytest.fail("an explicit count looks at no load"))
    if where == "argument":
        policy = threads.configure_threads(1)
    else:
        monkeypatch.setenv(where, "1")
        policy = threads.configure_threads()
    assert policy.threads == 1 and not policy.adaptive and torch.get_num_threads() == 1
    monkeypatch.setattr(threads, "_last_check", 0.0)
    threads.adapt()
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("bad", ["0", "-2", "two"])
def test_a_bad_count_is_a_user_error(fresh_policy, bad):
    with pytest.raises(InterpError, match="threads from 1 to 4096, auto or torch"):
        threads.configure_threads(bad)


def test_the_cli_sets_the_count_before_torch_starts(tmp_path):
    """In a fresh process: torch's pool starts at the chosen size, and `interp runs` never imports torch."""
    code = ("import sys; from interp.cli import main; main(['--threads', '1', 'runs']); "
            "print('torch' in sys.modules); import torch; print(torch.get_num_threads())")
    env = {"PATH": "/usr/bin:/bin", "INTERP_MODELS_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split()[-2:] == ["False", "1"], out


def test_busy_elsewhere_sees_a_busy_process():
    if not threads.available_cores() or sys.platform != "linux":
        pytest.skip("needs Linux /proc")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time

        time.sleep(0.3)
        assert max(threads.busy_elsewhere() for _ in range(5)) >= 1
    finally:
        busy.kill()
        busy.wait()


def test_auto_precision_is_bf16_only_where_it_is_native(monkeypatch):
    monkeypatch.setattr(device, "native_bf16", REAL_NATIVE_BF16)
    monkeypatch.setattr(device, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert device.resolve_precision("auto", "cpu") == "fp32"  # bf16 would be emulated: 4.5x slower
    monkeypatch.setattr(device, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_bf16"}))
    assert device.resolve_precision("auto", "cpu") == "bf16"
    monkeypatch.setattr(device, "cpu_flags", lambda: frozenset({"amx_bf16"}))
    assert device.resolve_precision("auto", "cpu") == "bf16"
    assert device.resolve_precision("fp32", "cpu") == "fp32"  # an explicit choice is kept
    monkeypatch.setattr(device, "cpu_flags", lambda: frozenset())
    assert device.resolve_precision("bf16", "cpu") == "bf16"
    assert device.resolve_precision("auto", "meta") == "fp32"
    with pytest.raises(InterpError, match="unknown precision 'fp16'"):
        device.resolve_precision("fp16", "cpu")


def test_a_run_records_the_precision_it_trained_in(tiny_run):
    assert tiny_run.summary["precision"] == "fp32" and tiny_run.config.train.precision == "auto"
