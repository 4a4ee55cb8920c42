"""P1 and P2: training CNNs on CIFAR-10 (the JPEG folder ../shared/data/cifar10-jpeg).

P1, the tutorial net (``tutorial``, 62,006 parameters) three ways in one run:

- (a0) the PyTorch CIFAR-10 tutorial's own loop: a DataLoader (batch 4, 2 workers) over
  images served one by one as PIL images through ToTensor + Normalize, SGD lr 0.001
  momentum 0.9, 2 epochs (:func:`tutorial_loop`);
- (a) the tutorial's recipe exactly, in our training loop (``--recipe tutorial``: batch 4,
  SGD lr 0.001 momentum 0.9, 2 epochs, no augmentation, in-memory tensors);
- (b) our ``quick`` recipe (interp/config.py): 2 epochs as the tutorial, batch 128, AdamW
  lr 4e-3 one-cycle, no augmentation (it costs accuracy in so few epochs), channels-last
  batches, one evaluation at the end; plus bf16 autocast (:data:`P1_EXTRA`), which pays on
  CPUs with AVX512-BF16 such as this one and on GPUs.

It prints the test accuracies, wall times and the ratios (a)/(b) and (a0)/(b). Goal: (b)
reaches at least 55% in at most 1/14 of (a)'s wall time. Two intra-op threads make the
batch-4 loops (a0) and (a) several times slower when another process holds a core, so their
times, and the ratios, depend strongly on machine load.

P2, our strong CNN (``cifarnet``, interp/zoo/strong.py) with its own recipe (``cifarnet`` in
interp/config.py: 8 epochs, batch 128, AdamW 3e-3 one-cycle, weight decay 0.05, label
smoothing 0.2, flips and 4 px translations, bf16 autocast, channels-last, mirror-image
test-time augmentation), evaluated on the whole test split after every epoch. It prints the
time until the test accuracy first reaches 85% (goal: at most 10 minutes on 2 CPU cores)
and the best accuracy with its time.

What is timed: the whole ``interp.train(...)`` call (model build, training loop, the
evaluations, per-epoch checkpoints, writing the run folder) minus the time it spends loading
the dataset, which is decoded once and cached (``$INTERP_CACHE_DIR``) and shared by all
runs; that load is measured inside the call and subtracted. P2's epoch times include the
evaluations done so far. Peak memory: the process's peak resident set size (ru_maxrss, a
high-water mark over the whole process) after each run, and torch's peak on CUDA.

    python benchmarks/train_cifar.py p1                 # about 2 minutes on a quiet machine
    python benchmarks/train_cifar.py p2                 # 6-12 minutes
    python benchmarks/train_cifar.py p2 --threads 1     # steadier when the machine is shared
    python benchmarks/train_cifar.py all --quick        # smoke run on a 2,000-image subset
    python benchmarks/train_cifar.py p2 --set epochs=10 # recipe overrides for (b) or P2
    python benchmarks/train_cifar.py p2 --out /tmp/p2   # also save JSON and an accuracy plot
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "cifar10-jpeg"

# P1 (b): the quick recipe with these settings (strings, as ``--set`` takes them).
P1_RECIPE = "quick"
P1_EXTRA = {"precision": "bf16"}
P1_GOAL_ACC, P1_GOAL_RATIO = 0.55, 14.0
P2_TARGET, P2_GOAL_S = 0.85, 600.0
QUICK = {"n_train": "2000", "n_test": "500"}


# ------------------------------------------------------------------------ measuring


@contextmanager
def data_load_timer():
    """Measure the time the training task spends loading the dataset (yields a 1-item list)."""
    from interp.training.tasks import classification

    original = classification.load_image_data
    spent = [0.0]

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - t0

    classification.load_image_data = timed
    try:
        yield spent
    finally:
        classification.load_image_data = original


def peak_memory() -> dict:
    """Peak resident set size of this process so far (MiB), and torch's CUDA peak if any."""
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    out = {"peak_rss_mib": round(rss_kib / 1024, 1)}
    if torch.cuda.is_available():
        out["cuda_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def timed_train(model: str, data: str, root: Path, name: str, *, recipe: str, overrides: dict,
                device: str, on_epoch=None) -> dict:
    """Train one run; its wall time without data loading, accuracy, per-epoch rows, memory."""
    from interp.training.loop import train

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    epoch_times: list[float] = []
    epoch_cpu: list[float] = []  # process CPU seconds: less sensitive to other load than wall time
    with data_load_timer() as loading:
        t0, c0 = time.perf_counter(), time.process_time()

        def log(line: str) -> None:
            # Called by the training core after each epoch's evaluation and checkpoint.
            epoch_times.append(time.perf_counter() - t0 - loading[0])
            epoch_cpu.append(time.process_time() - c0)
            print(f"  {line}  [{epoch_times[-1]:.1f}s]", flush=True)
            if on_epoch:
                on_epoch(line)

        run = train(model, data, name=name, root=root, recipe=recipe, overrides=overrides,
                    device=device, progress=False, log=log)
        wall = time.perf_counter() - t0 - loading[0]
    rows = run.metrics
    for row, t, c in zip(rows, epoch_times, epoch_cpu):
        row["elapsed_s"], row["cpu_s"] = round(t, 2), round(c, 2)
    return {"model": model, "recipe": recipe, "overrides": overrides, "test_acc": run.summary["test_acc"],
            "wall_s": round(wall, 2), "data_load_s": round(loading[0], 2),
            "train_loop_s": run.summary.get("train_seconds"), "epochs": rows,
            "train_config": json.loads((run.path / "config.json").read_text())["train"], **peak_memory()}


def machine() -> dict:
    import os

    from interp.device import cpu_model

    return {"cpu": cpu_model(), "nproc": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


# ------------------------------------------------------------------------------ P1


class TutorialImages(torch.utils.data.Dataset):
    """Images served one at a time as PIL images through a transform, as torchvision's CIFAR10 does."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, transform):
        self.x = x.permute(0, 2, 3, 1).contiguous().numpy()  # (N, H, W, C) uint8, like CIFAR10.data
        self.y = y.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.x[i])), self.y[i]


def tutorial_loop(data: str, device: str, quick: bool) -> dict:
    """The tutorial's own code: DataLoader (batch 4, 2 workers) over per-image PIL transforms."""
    import torchvision.transforms as T

    from interp.data import load_image_data
    from interp.device import resolve_device
    from interp.zoo import create_model

    dev = resolve_device(device)
    images = load_image_data(data, **({"n_train": 2000, "n_test": 500} if quick else {}), progress=False)
    transform = T.Compose([T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    loader = torch.utils.data.DataLoader
    trainloader = loader(TutorialImages(images.train_x, images.train_y, transform), batch_size=4, shuffle=True,
                         num_workers=2, generator=torch.Generator().manual_seed(0))
    testloader = loader(TutorialImages(images.test_x, images.test_y, transform), batch_size=4, shuffle=False,
                        num_workers=2)
    torch.manual_seed(0)
    net = create_model("tutorial").to(dev)  # the tutorial's Net, layer for layer
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
    t0 = time.perf_counter()
    for epoch in range(2):
        running_loss = 0.0
        for i, (inputs, labels) in enumerate(trainloader):
            inputs, labels = inputs.to(dev), labels.to(dev)
            optimizer.zero_grad()
            loss = criterion(net(inputs), labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()  # the tutorial prints the mean every 2000 batches
            if i % 2000 == 1999:
                running_loss = 0.0
        print(f"  epoch {epoch + 1}/2  [{time.perf_counter() - t0:.1f}s]", flush=True)
    correct = total = 0
    with torch.no_grad():
        for inputs, labels in testloader:
            pred = net(inputs.to(dev)).argmax(1).cpu()
            total += labels.size(0)
            correct += (pred == labels).sum().item()
    return {"test_acc": correct / total, "wall_s": round(time.perf_counter() - t0, 2), **peak_memory()}


def p1(data: str, root: Path, device: str, quick: bool, extra: dict) -> dict:
    base = QUICK if quick else {}
    print("P1 (a0): the tutorial's own loop (DataLoader, batch 4, 2 workers, per-image transforms)", flush=True)
    a0 = tutorial_loop(data, device, quick)
    print("P1 (a): the tutorial's recipe in our loop (in-memory tensors; batch 4, SGD 0.001, momentum 0.9, "
          "2 epochs)", flush=True)
    a = timed_train("tutorial", data, root, "p1-tutorial", recipe="tutorial", overrides={**base, "eval_every": "0"},
                    device=device)
    print(f"P1 (b): {P1_RECIPE} recipe with {P1_EXTRA | extra}", flush=True)
    b = timed_train("tutorial", data, root, "p1-quick", recipe=P1_RECIPE, overrides={**base, **P1_EXTRA, **extra},
                    device=device)
    ratio = a["wall_s"] / max(b["wall_s"], 1e-9)
    ratio0 = a0["wall_s"] / max(b["wall_s"], 1e-9)
    met = b["test_acc"] >= P1_GOAL_ACC and ratio >= P1_GOAL_RATIO
    met0 = b["test_acc"] >= P1_GOAL_ACC and ratio0 >= P1_GOAL_RATIO
    print(f"P1: (a0) tutorial's own loop     test acc {a0['test_acc']:.4f}  wall {a0['wall_s']:.1f}s  "
          f"peak RSS {a0['peak_rss_mib']:.0f} MiB")
    print(f"P1: (a)  tutorial recipe, ours   test acc {a['test_acc']:.4f}  wall {a['wall_s']:.1f}s  "
          f"peak RSS {a['peak_rss_mib']:.0f} MiB")
    print(f"P1: (b)  quick recipe            test acc {b['test_acc']:.4f}  wall {b['wall_s']:.1f}s  "
          f"peak RSS {b['peak_rss_mib']:.0f} MiB (RSS: process high-water marks)")
    note = " (quick run: not a measurement)" if quick else ""
    print(f"P1: goal (b) >= {P1_GOAL_ACC:.0%} in <= 1/{P1_GOAL_RATIO:g} of the tutorial's time: "
          f"(a)/(b) = {ratio:.1f}x {'met' if met else 'NOT met'}; (a0)/(b) = {ratio0:.1f}x "
          f"{'met' if met0 else 'NOT met'}{note}", flush=True)
    return {"a0": a0, "a": a, "b": b, "ratio": round(ratio, 2), "ratio_a0": round(ratio0, 2),
            "goal_met": met, "goal_met_a0": met0}


# ------------------------------------------------------------------------------ P2


def p2(data: str, root: Path, device: str, quick: bool, extra: dict) -> dict:
    overrides = {**(QUICK | {"epochs": "2"} if quick else {}), **extra}
    print(f"P2: cifarnet, recipe cifarnet{' with ' + str(overrides) if overrides else ''}", flush=True)
    r = timed_train("cifarnet", data, root, "p2-cifarnet", recipe="cifarnet", overrides=overrides, device=device)
    rows = [row for row in r["epochs"] if "test_acc" in row]
    hit = next((row for row in rows if row["test_acc"] >= P2_TARGET), None)
    best = max(rows, key=lambda row: row["test_acc"])
    r.update(time_to_target_s=hit["elapsed_s"] if hit else None, target_epoch=hit["epoch"] if hit else None,
             best_acc=best["test_acc"], best_epoch=best["epoch"], best_s=best["elapsed_s"])
    met = hit is not None and hit["elapsed_s"] <= P2_GOAL_S
    when = f"{hit['elapsed_s']:.0f}s (epoch {hit['epoch']})" if hit else "never"
    print(f"P2: time to {P2_TARGET:.0%} test accuracy: {when}; goal <= {P2_GOAL_S:.0f}s: "
          f"{'met' if met else 'NOT met'}{' (quick run: not a measurement)' if quick else ''}")
    print(f"P2: best test acc {best['test_acc']:.4f} at {best['elapsed_s']:.0f}s (epoch {best['epoch']}); "
          f"whole run {r['wall_s']:.0f}s; peak RSS {r['peak_rss_mib']:.0f} MiB", flush=True)
    r["goal_met"] = met
    return r


def plot_p2(result: dict, path: Path) -> Path:
    """Test accuracy against wall time, with the 85% target."""
    from interp.plots import new_figure, save_figure

    rows = [row for row in result["epochs"] if "test_acc" in row]
    fig, ax = new_figure(6, 3.5)
    ax.plot([row["elapsed_s"] / 60 for row in rows], [100 * row["test_acc"] for row in rows], "o-",
            label="cifarnet (test acc after each epoch)")
    ax.axhline(100 * P2_TARGET, color="grey", ls="--", lw=1, label=f"target {P2_TARGET:.0%}")
    ax.axvline(P2_GOAL_S / 60, color="grey", ls=":", lw=1, label="goal: 10 min")
    ax.set_xlabel("wall time (minutes, data loading excluded)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)


# ---------------------------------------------------------------------------- main


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("which", choices=("p1", "p2", "all"), help="which benchmark to run")
    p.add_argument("--data", default=str(DEFAULT_DATA),
                   help=f"CIFAR-10 as an image folder with train/ and test/ (default {DEFAULT_DATA})")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--quick", action="store_true", help="2,000 training images (checks the script only)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="training override for P1 (b) and P2, e.g. --set epochs=3 (repeatable)")
    p.add_argument("--out", metavar="DIR", help="also write train_cifar_p1.json, train_cifar_p2.json and "
                                                "train_cifar_p2.png (accuracy against time) into DIR")
    args = p.parse_args(argv)
    from interp.device import machine_description

    print(f"machine: {machine_description()}", flush=True)  # the CPU kind and load every figure depends on
    from interp.config import parse_set_options
    from interp.data import load_image_data
    from interp.errors import InterpError

    torch.set_num_threads(args.threads)
    data = str(Path(args.data).resolve())
    if not Path(data).is_dir():
        print(f"error: no CIFAR-10 folder at {data}; pass --data PATH (train/ and test/ subfolders)",
              file=sys.stderr)
        return 2
    try:
        extra = parse_set_options(args.set)
        t0 = time.perf_counter()
        load_image_data(data)  # decode and cache once, outside every timing
        import interp.training.loop  # noqa: F401  (imports, and the registry's model modules, outside
        from interp.zoo import list_models  # the timings too)

        list_models()
        print(f"data: {data} ready in {time.perf_counter() - t0:.1f}s (decoded once, then cached)", flush=True)
        record = {"command": " ".join(["python", *sys.argv]), "machine": machine(), "quick": args.quick}
        print(f"machine: {record['machine']}", flush=True)
        with tempfile.TemporaryDirectory(prefix="train_cifar-") as tmp:
            results = {}
            if args.which in ("p1", "all"):
                results["p1"] = p1(data, Path(tmp), args.device, args.quick, extra)
            if args.which in ("p2", "all"):
                results["p2"] = p2(data, Path(tmp), args.device, args.quick, extra)
    except InterpError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.out:
        out = Path(args.out)
        from interp.io import write_json

        for key, result in results.items():
            write_json(out / f"train_cifar_{key}.json", {**record, key: result})
        if "p2" in results:
            plot_p2(results["p2"], out / "train_cifar_p2.png")
        print(f"results written to {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
