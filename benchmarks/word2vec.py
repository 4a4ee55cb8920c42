"""P7: skip-gram with negative sampling, ours against gensim's Word2Vec, same corpus and settings.

Settings (both): the words of Tiny Shakespeare, 100 dimensions, window 5, 5 negatives,
5 epochs, min-count 3, subsampling 1e-3, dynamic window, linear learning rate
0.025 -> 0.0001. Both get exactly the same sentences (``interp.data.words.split_sentences``:
lower-cased words, one sentence per paragraph).

Throughput is raw corpus words per second, as gensim counts "raw words": every word of the
text, also those below min-count, times the epochs, over the training time. For gensim the
time of ``Word2Vec.train`` (vocabulary built before); for ours the training time of the
run (``summary.json``: per-epoch pair sampling and updates, not the vocabulary, the
evaluation or the checkpoint writes). Effective words/s (after min-count and subsampling)
are printed for gensim. "CPU s" is the process CPU time of the whole run (ours: tokenising,
vocabulary, training, evaluation, checkpoints; gensim: vocabulary and training), a figure
that a busy machine disturbs less than wall time.

    python benchmarks/word2vec.py              # the P7 figures (about a minute)
    python benchmarks/word2vec.py --quick      # smoke run: 50k words, 1 epoch
    python benchmarks/word2vec.py --threads 1  # one core each (gensim workers=1)

gensim is a benchmark-only dependency: ``pip install gensim``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_TEXT = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
PROBES = ("king", "queen", "love", "lord")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=str(SHARED_TEXT), help="text file (default ../shared/data/tinyshakespeare.txt)")
    p.add_argument("--quick", action="store_true", help="50k words, 1 epoch: a smoke run")
    p.add_argument("--threads", type=int, default=2, help="torch threads for ours, gensim workers (default 2)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=0, help="our pairs per step (0: the recipe's)")
    p.add_argument("--skip-gensim", action="store_true", help="measure ours only")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    return p.parse_args(argv)


def load_sentences(path: str, max_words: int) -> list[list[str]]:
    from interp.data.words import WordCorpus, read_text, split_sentences

    corpus = WordCorpus(path, split_sentences(read_text(path)))
    return corpus.head(max_words).sentences


def run_ours(corpus_path: Path, epochs: int, threads: int, batch_size: int) -> dict:
    import torch

    from interp.analysis.words.geometry import nearest_neighbors
    from interp.analysis.words.vectors import WordVectors
    from interp.training.loop import train

    torch.set_num_threads(threads)
    overrides = {"dim": "100", "window": "5", "negatives": "5", "min_count": "3", "subsample": "1e-3"}
    if batch_size:
        overrides["batch_size"] = str(batch_size)
    with tempfile.TemporaryDirectory() as root:
        t0, c0 = time.perf_counter(), time.process_time()
        run = train("word2vec-sgns", f"text:{corpus_path}", name="p7", root=Path(root), device="cpu",
                    progress=False, log=None, epochs=epochs, overrides=overrides)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        s = run.summary
        vectors = WordVectors.from_run(run)
    seconds = s["train_seconds"]
    return {
        "raw_words": s["raw_tokens"], "vocab": s["vocab_size"], "seconds": seconds, "wall_seconds": wall,
        "cpu_seconds": cpu,
        "raw_words_per_s": s["raw_tokens"] * epochs / seconds,
        "effective_words_per_s": None,  # subsampled words are not counted per epoch by the core
        "batch_size": run.config.train.batch_size, "threads": threads,
        "neighbors": {w: nearest_neighbors(vectors, w, 5).words for w in PROBES if w in vectors},
        "pair_loss": s.get("pair_loss"),
    }


def run_gensim(sentences: list[list[str]], epochs: int, threads: int) -> dict:
    from gensim.models import Word2Vec

    model = Word2Vec(vector_size=100, window=5, negative=5, min_count=3, sg=1, hs=0, sample=1e-3,
                     alpha=0.025, min_alpha=0.0001, workers=threads, epochs=epochs, seed=1)
    c0 = time.process_time()
    model.build_vocab(sentences)
    raw = sum(len(s) for s in sentences)
    t0 = time.perf_counter()
    effective, raw_seen = model.train(sentences, total_examples=len(sentences), epochs=epochs)
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return {
        "raw_words": raw, "vocab": len(model.wv), "seconds": seconds, "wall_seconds": seconds, "cpu_seconds": cpu,
        "raw_words_per_s": raw_seen / seconds, "effective_words_per_s": effective / seconds,
        "threads": threads,
        "neighbors": {w: [n for n, _ in model.wv.most_similar(w, topn=5)] for w in PROBES if w in model.wv},
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    from interp.device import machine_description

    print(f"machine: {machine_description()}", flush=True)  # the CPU kind and load every figure depends on
    max_words = 50_000 if args.quick else 0
    epochs = 1 if args.quick else args.epochs
    sentences = load_sentences(args.corpus, max_words)
    corpus_path = Path(args.corpus)
    tmp = None
    if max_words:  # ours reads a file: write the cut corpus, one paragraph per sentence
        tmp = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
        tmp.write("\n\n".join(" ".join(s) for s in sentences))
        tmp.close()
        corpus_path = Path(tmp.name)
    try:
        results = {"ours": run_ours(corpus_path, epochs, args.threads, args.batch_size)}
        if not args.skip_gensim:
            try:
                results["gensim"] = run_gensim(sentences, epochs, args.threads)
            except ImportError:
                print("gensim is not installed (pip install gensim); measuring ours only", file=sys.stderr)
    finally:
        if tmp:
            Path(tmp.name).unlink(missing_ok=True)

    print(f"P7  skip-gram negative sampling on {args.corpus}: {results['ours']['raw_words']:,} words, "
          f"vocabulary {results['ours']['vocab']:,}, {epochs} epochs, {args.threads} thread(s)")
    print("| implementation | raw words/s | effective words/s | train s | CPU s (whole run) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        eff = f"{r['effective_words_per_s']:,.0f}" if r["effective_words_per_s"] else "-"
        print(f"| {name} | {r['raw_words_per_s']:,.0f} | {eff} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} |")
    if "gensim" in results:
        ratio = results["ours"]["raw_words_per_s"] / results["gensim"]["raw_words_per_s"]
        print(f"\nours / gensim: {ratio:.2f}x (goal >= 1.0x)")
        results["ratio"] = ratio
    for name, r in results.items():
        if isinstance(r, dict):
            for word, near in r["neighbors"].items():
                print(f"{name:>6} top-5 of {word!r}: {', '.join(near)}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
