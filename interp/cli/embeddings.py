"""``interp embed``: explore word vectors (neighbours, analogies, word2viz axes, bias, plots)."""

from __future__ import annotations

import argparse
import sys

from .common import table

EPILOG = """\
examples:
  interp train word2vec                                  # the exercise on the embedded toy corpus (d=2)
  interp embed plot --run word2vec                       # the 2-D embedding as it is
  interp embed neighbors king --run word2vec --metric euclidean
  interp train word2vec-sgns --dataset ../shared/data/tinyshakespeare.txt --set min_count=3
  interp embed analogy man king woman --run word2vec-sgns    # man is to king as woman is to ?
  interp embed axes --x she,he --y rich,poor --words doctor,nurse,king,queen --vectors glove.6B.100d.txt
  interp embed axes --preset jobs --vectors glove.6B.100d.txt --limit 100000
  interp embed bias --vectors glove.6B.100d.txt          # occupations on the she-he axis
  interp embed report --run word2vec-sgns                # everything above, for the report page

--run takes a word2vec run (default: the most recent one); --vectors a GloVe or word2vec
text file (optionally .gz), --limit reading only its first N (most frequent) words.
An axis 'a,b' points from b to a; 'she,he;her,his' averages several pairs. A word's place
on an axis is the cosine of its (unit) vector with that direction. Output files go to
reports/RUN/embeddings/ (reports/vectors-NAME/embeddings/ for a file), or --out DIR.
"""


def register(sub, common) -> None:
    p = sub.add_parser("embed", parents=[common], help="explore word vectors: neighbours, analogies, axes, bias",
                       description="Explore the word vectors of a word2vec run or of a GloVe/word2vec text file, "
                                   "as word2viz does.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    verbs = p.add_subparsers(dest="verb", metavar="VERB")

    def verb(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        q = verbs.add_parser(name, parents=[common], help=help_text, description=description,
                             formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
        source = q.add_argument_group("vectors (one of)")
        source.add_argument("--run", metavar="RUN", help="word2vec run name or path (default: the most recent)")
        source.add_argument("--vectors", metavar="PATH", help="GloVe or word2vec text file (.txt or .txt.gz)")
        q.add_argument("--limit", type=int, default=0, metavar="N",
                       help="read only the first N words of --vectors (0: all)")
        q.add_argument("--out", metavar="DIR", help="output folder (default reports/NAME/embeddings)")
        return q

    q = verb("neighbors", "nearest words to a word", "The k nearest words to WORD (cosine similarity by default).")
    q.add_argument("word")
    q.add_argument("--k", type=int, default=10, help="how many neighbours (default 10)")
    q.add_argument("--metric", default="cosine", choices=("cosine", "euclidean"),
                   help="cosine (default) or euclidean (often clearer for a 2-D embedding)")
    q.set_defaults(func=cmd_neighbors)

    q = verb("analogy", "A is to B as C is to ?",
             "Words nearest to B - A + C on unit vectors, leaving out A, B and C (3CosAdd).")
    q.add_argument("a")
    q.add_argument("b")
    q.add_argument("c")
    q.add_argument("--k", type=int, default=5, help="how many answers (default 5)")
    q.set_defaults(func=cmd_analogy)

    q = verb("axes", "place words on axes defined by word pairs (word2viz)",
             "Place words on an x axis (and a y axis) defined by word pairs; writes a labelled scatter PNG.")
    q.add_argument("--x", metavar="AXIS", help="x axis, e.g. she,he or 'she,he;her,his'")
    q.add_argument("--y", metavar="AXIS", help="y axis, e.g. rich,poor (optional)")
    q.add_argument("--words", metavar="W1,W2,...", help="words to place")
    q.add_argument("--preset", help="a ready view instead of --x/--y/--words: gender, jobs, royalty")
    q.set_defaults(func=cmd_axes)

    q = verb("plot", "labelled 2-D scatter of the embedding",
             "The word vectors as a labelled scatter: as they are when d = 2, else their first two principal "
             "components.")
    q.add_argument("--words", metavar="W1,W2,...", help="words to plot (default: the most frequent)")
    q.add_argument("--top", type=int, default=60, help="without --words: how many frequent words (default 60)")
    q.set_defaults(func=cmd_plot)

    q = verb("bias", "occupation words on the she-he axis",
             "List occupation words by their place on an axis (default she,he), with a bar chart.")
    q.add_argument("--axis", default="she,he", help="the axis (default she,he)")
    q.add_argument("--words", metavar="W1,W2,...", help="words to rank (default: a list of occupations)")
    q.set_defaults(func=cmd_bias)

    q = verb("report", "compute the report page's plots and tables",
             "The 2-D plot, a preset axes view, the bias probe, neighbour and analogy tables, saved as "
             "JSON + PNG with a summary.json for the report.")
    q.set_defaults(func=cmd_report)

    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


# ---------------------------------------------------------------------- handlers


def _vectors(args):
    from ..analysis.embeddings import load_vectors

    vectors = load_vectors(args.run, args.vectors, limit=args.limit)
    if args.run is None and args.vectors is None:
        print(f"Using the most recent word2vec run: {vectors.name}", file=sys.stderr)
    return vectors


def _folder(args, vectors):
    from pathlib import Path

    return Path(args.out) if args.out else vectors.output_dir()


def _words(text: str | None) -> list[str] | None:
    return [w.strip() for w in text.split(",") if w.strip()] if text else None


def _num(value: float) -> str:
    return f"{value:+.3f}"


def cmd_neighbors(args) -> int:
    from ..analysis.embeddings import nearest_neighbors, save_result

    vectors = _vectors(args)
    result = nearest_neighbors(vectors, args.word, args.k, metric=args.metric)
    header, fmt = ("cosine", _num) if result.metric == "cosine" else ("distance", "{:.3f}".format)
    print(f"Nearest to {result.word!r} ({vectors.source}, {result.metric}):")
    print(table(result.rows(), [("rank", "#"), ("word", "word"), ("score", header)], {"score": fmt}))
    print(f"Saved: {save_result(result, _folder(args, vectors))['json']}")
    return 0


def cmd_analogy(args) -> int:
    from ..analysis.embeddings import analogy, save_result

    vectors = _vectors(args)
    result = analogy(vectors, args.a, args.b, args.c, args.k)
    print(f"{result.a} is to {result.b} as {result.c} is to {result.answer}  ({vectors.source})")
    print(table(result.rows(), [("rank", "#"), ("word", "word"), ("score", "cosine")], {"score": _num}))
    print(f"Saved: {save_result(result, _folder(args, vectors))['json']}")
    return 0


def cmd_axes(args) -> int:
    from ..analysis.embeddings import PRESETS, preset_projection, project, save_result
    from ..errors import InterpError

    if args.preset:
        if args.x or args.y:
            raise InterpError("--preset sets the axes itself; drop --x/--y (or drop --preset)")
        vectors = _vectors(args)
        if args.words:  # the preset's axes, the user's words
            preset = PRESETS.get(args.preset) or preset_projection(vectors, args.preset)  # unknown: raises
            result = project(vectors, _words(args.words), preset.x, preset.y, lenient=True,
                             title=f"{args.preset} axes")
        else:
            result = preset_projection(vectors, args.preset)
    else:
        if not args.x:
            raise InterpError("axes needs --x AXIS (e.g. --x she,he) or --preset gender|jobs|royalty")
        if not args.words:
            raise InterpError("axes needs --words W1,W2,... (e.g. --words doctor,nurse) or a --preset")
        vectors = _vectors(args)
        result = project(vectors, _words(args.words), args.x, args.y)
    columns = [("word", "word"), ("x", f"x: {result.x_axis}")]
    if result.y is not None:
        columns.append(("y", f"y: {result.y_axis}"))
    rows = sorted(result.rows(), key=lambda r: -r["x"])
    print(f"{vectors.source}:")
    print(table(rows, columns, {"x": _num, "y": _num}))
    if result.skipped:
        print(f"Not in the vocabulary (left out): {', '.join(result.skipped)}")
    stem = f"axes-{args.preset}" if args.preset and not args.words else None
    paths = save_result(result, _folder(args, vectors), stem)
    print(f"Saved: {paths['png']}")
    return 0


def cmd_plot(args) -> int:
    from ..analysis.embeddings import embedding_2d, save_result

    vectors = _vectors(args)
    result = embedding_2d(vectors, _words(args.words), top=args.top)
    how = "the vectors as they are (d = 2)" if result.method == "raw" else (
        f"first two principal components ({100 * sum(result.explained):.0f}% of the variance of these words)")
    print(f"{len(result.words)} words of {vectors.source}: {how}")
    print(f"Saved: {save_result(result, _folder(args, vectors))['png']}")
    return 0


def cmd_bias(args) -> int:
    from ..analysis.embeddings import OCCUPATIONS, bias_probe, save_result

    vectors = _vectors(args)
    result = bias_probe(vectors, _words(args.words) or OCCUPATIONS, args.axis)
    a, b = result.pairs[0]
    print(f"Words on the {result.axis} axis ({vectors.source}); positive: nearer {a!r}, negative: nearer {b!r}")
    print(table(result.rows(), [("word", "word"), ("score", "cosine")], {"score": _num}))
    if result.skipped:
        print(f"Not in the vocabulary (left out): {', '.join(result.skipped)}")
    print("This is correlation in the training text, not a cause; see `interp embed report` for the note.")
    print(f"Saved: {save_result(result, _folder(args, vectors))['png']}")
    return 0


def cmd_report(args) -> int:
    from ..analysis.embeddings import run_embedding_analyses

    vectors = _vectors(args)
    folder = _folder(args, vectors)
    report = run_embedding_analyses(vectors, folder)
    print(f"Embedding analyses of {vectors.source} in {folder}/:")
    for label, value in (("2-D plot", report.plot), ("axes view", report.projection), ("bias probe", report.bias)):
        print(f"  {label:<11} {value or '-'}")
    print(f"  neighbours  {', '.join(report.neighbors) or '-'}")
    print(f"  analogies   {', '.join(report.analogies) or '-'}")
    for note in report.skipped:
        print(f"  skipped: {note}")
    return 0
