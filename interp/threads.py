"""How many CPU threads torch uses: as many as the machine has free, re-checked as work goes on.

Why: torch's OpenMP threads wait for each other at the end of every parallel region by
spinning. When another process holds a core, one of our threads is descheduled and its
sibling spins through its time slice: on 2 cores with two busy processes beside it, torch's
defaults made one training epoch 8.9x and a 128-step feature visualisation 6x slower than
quiet (single runs up to 21x), where a fair share is about 2x (benchmarks/contention.py,
RESULTS.md). One thread has no sibling to wait for; two are faster only while both cores
are free. So: all the cores this process may use (affinity and cgroup quota) when no other
process is running on them, one fewer per process that is, re-checked at most once a second
by long loops (:func:`adapt`): 1.6-2.2x under the same load, the same as torch's defaults
quiet. ``OMP_WAIT_POLICY=PASSIVE`` and a fixed single thread were measured too and are not
the default: they cost 1.5-2.5x and 1.2-1.4x of the quiet speed.

An explicit choice always wins and is never adapted: ``--threads N``, ``INTERP_THREADS=N``,
or ``OMP_NUM_THREADS``; ``INTERP_THREADS=torch`` leaves torch's own defaults alone.

>>> import interp
>>> interp.configure_threads()          # in a notebook, before heavy work
ThreadPolicy(threads=2, cores=2, busy_elsewhere=0, source='auto')
>>> interp.configure_threads(1)         # pin one thread
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass

ENV = "INTERP_THREADS"
RECHECK_SECONDS = 1.0


@dataclass
class ThreadPolicy:
    threads: int
    cores: int
    busy_elsewhere: int
    source: str  # auto | --threads | INTERP_THREADS | OMP_NUM_THREADS | torch

    @property
    def adaptive(self) -> bool:
        return self.source == "auto"


_policy: ThreadPolicy | None = None
_last_check = 0.0
_omp_env_set = None  # the OMP_NUM_THREADS value this module set (not the user's choice)
_pins = 0  # inside pinned(): adapt() leaves the count alone
_first_step_marked = False
FIRST_STEP_MARK = "INTERP_FIRST_STEP_MARK"


def available_cores() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota
    (containers often see all the host's cores but may use only a few)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup (v2 ``cpu.max``, v1 ``cfs_quota_us``), None when unlimited."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
            quota = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            period = int(f.read())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def busy_elsewhere(samples: int = 5, interval: float = 0.002) -> int:
    """Runnable threads of other processes right now: the kernel's count of running tasks
    (``/proc/loadavg``) less this process's own, the fewest over a few samples (~10 ms). The
    fewest, because a CPU-bound neighbour is runnable in every sample while a kernel worker,
    or one of our own OpenMP threads going to sleep between the two reads, shows in one at most
    (with the median, such blips made a quiet machine look busy and halved the thread count now
    and then). 0 where the kernel does not say (not Linux)."""
    counts = []
    for i in range(samples):
        before = _own_running()
        try:
            with open("/proc/loadavg") as f:
                running = int(f.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return 0
        counts.append(max(0, running - max(before, _own_running())))
        if i + 1 < samples:
            time.sleep(interval)
    return min(counts)


def _own_running() -> int:
    """This process's threads in state R (running or runnable): the reader itself, and any
    OpenMP worker that is spinning."""
    n = 0
    try:
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "R":
                        n += 1
            except (OSError, IndexError):
                continue
    except OSError:
        return 1
    return max(1, n)


MAX_THREADS = 4096


def _explicit(threads: int | str | None) -> tuple[int | None, str]:
    """The user's explicit thread count and where it came from, or (None, 'auto')."""
    from .errors import InterpError

    omp = os.environ.get("OMP_NUM_THREADS")
    for value, source in ((threads, "--threads"), (os.environ.get(ENV), ENV),
                          (omp if omp != _omp_env_set else None, "OMP_NUM_THREADS")):
        if value is None or value == "" or value == "auto":
            continue
        if value == "torch":
            return None, "torch"
        try:
            n = int(value)
        except (TypeError, ValueError):
            n = 0
        if not 1 <= n <= MAX_THREADS:  # torch takes a C int: 2**64 would be an overflow, not a message
            raise InterpError(f"{source} must be a number of threads from 1 to {MAX_THREADS}, auto or torch; "
                              f"got {str(value)[:40]!r}")
        return n, source
    return None, "auto"


def configure_threads(threads: int | str | None = None) -> ThreadPolicy:
    """Choose torch's intra-op thread count for this process (see the module docstring).

    Called by the CLI before torch is imported, so the choice is in place when torch starts
    its thread pool (``OMP_NUM_THREADS`` is set for it); callable any time from Python.
    """
    global _policy, _last_check
    n, source = _explicit(threads)
    cores = available_cores()
    busy = 0
    if source == "torch":
        _policy = ThreadPolicy(_torch_threads() or cores, cores, 0, source)
        return _policy
    if n is None:
        busy = busy_elsewhere()
        n = max(1, cores - busy)
    _apply(n)
    _policy, _last_check = ThreadPolicy(n, cores, busy, source), time.monotonic()
    return _policy


def adapt() -> ThreadPolicy | None:
    """Re-check, at most once a second, how many cores are free and follow them (only for
    the automatic policy). Cheap enough to call from every step of a long loop."""
    global _last_check, _first_step_marked
    if not _first_step_marked:
        _first_step_marked = True
        if os.environ.get(FIRST_STEP_MARK):  # benchmarks/contention.py times start-up to here
            print(f"{FIRST_STEP_MARK} {time.time():.3f}", file=sys.stderr, flush=True)
    if _policy is None or not _policy.adaptive or _pins:
        return _policy
    now = time.monotonic()
    if now - _last_check < RECHECK_SECONDS:
        return _policy
    _last_check = now
    busy = busy_elsewhere(samples=3, interval=0.001)
    n = max(1, _policy.cores - busy)
    if n != _policy.threads:
        _apply(n)
        _policy.threads = n
    _policy.busy_elsewhere = busy
    return _policy


@contextlib.contextmanager
def pinned(n: int):
    """Exactly ``n`` torch threads inside the block, whatever :func:`adapt` would choose; the
    count before is restored after. For code that knows its ops are too small for threads.

    >>> with pinned(1):
    ...     train_word_vectors()
    """
    global _pins
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    _pins += 1
    try:
        yield
    finally:
        _pins -= 1
        torch.set_num_threads(before)


def current_policy() -> ThreadPolicy | None:
    return _policy


def _torch_threads() -> int | None:
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


def _apply(n: int) -> None:
    global _omp_env_set
    torch = sys.modules.get("torch")
    if torch is None:
        # read by torch when it starts its OpenMP pool; the CLI comes here before importing torch
        os.environ["OMP_NUM_THREADS"] = _omp_env_set = str(n)
    elif torch.get_num_threads() != n:
        torch.set_num_threads(n)
