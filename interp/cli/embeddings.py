"""``interp embed``: explore word vectors (neighbours, analogies, word2viz axes, bias, plots)."""

from __future__ import annotations

import argparse
import sys

from ..terminal import printable, table
from .common import add_json, int_in, print_json

SOURCES = """\
--run takes a word2vec run (default: the most recent one); --vectors a GloVe or word2vec
text file (optionally .gz), --limit reading only its first N (most frequent) words.
An axis 'a,b' points from b to a; 'she,he;her,his' averages several pairs. A word's place
on an axis is the cosine of its (unit) vector with that direction. Output files go to
reports/RUN/embeddings/ (reports/vectors-NAME/embeddings/ for a file), or --out DIR; a
file holding a result of other settings is kept (the new one is saved beside it). --json
prints the result (interp.results.describe) with the saved file's path under "saved".
"""

EPILOG = """\
examples:
  interp train word2vec                                  # the exercise on the embedded toy corpus (d=2)
  interp embed plot --run word2vec                       # the 2-D embedding as it is
  interp embed neighbors king --run word2vec --metric euclidean
  interp train word2vec-sgns --dataset ../shared/data/tinyshakespeare.txt --set min_count=3
  interp embed analogy man king woman --run word2vec-sgns    # man is to king as woman is to ?
  interp embed analogy man doctor woman --vectors glove.6B.100d.txt --expect nurse
  interp embed axes --x she,he --y rich,poor --words doctor,nurse,king,queen --vectors glove.6B.100d.txt
  interp embed axes --preset jobs --vectors glove.6B.100d.txt --limit 100000
  interp embed bias --vectors glove.6B.100d.txt          # occupations on the she-he axis
  interp embed report --run word2vec-sgns                # everything above, for the report page
  interp embed neighbors king --run word2vec --json      # any of them as JSON

""" + SOURCES

ANALOGY_EPILOG = """\
A : B :: C : ? ranks every word by its cosine with B - A + C (unit vectors, 3CosAdd). The
usual convention (gensim's most_similar, the word2vec papers) leaves A, B and C out of the
answers. Without that exclusion the nearest word is often B itself: in widely used
pretrained vectors "man : doctor :: woman : ?" gives "doctor", and "nurse" appears only
once "doctor" is left out (Nissim, van Noord & van der Goot 2020, "Fair is Better than
Sensational", Computational Linguistics 46(2)). So both rankings are printed, with a
note when the convention made the answer. --expect WORD gives that word's rank and cosine in both. A warning says when a
query word occurs fewer than 20 times in the training text (its vector means little) or
the vocabulary is small; a --vectors file has no counts, so they are unknown.

--run takes a word2vec run (default: the most recent one); --vectors a GloVe or word2vec
text file (optionally .gz), --limit reading only its first N (most frequent) words. The
result is saved as JSON under reports/RUN/embeddings/ (or --out DIR); --json prints it
(with the saved file's path under "saved") instead of the tables.

examples:
  interp embed analogy man king woman --run word2vec            # the toy corpus: queen?
  interp embed analogy man king woman --run word2vec --expect queen
  interp embed analogy man doctor woman --vectors glove.6B.100d.txt --limit 100000 --expect nurse
  interp embed analogy man king woman --run word2vec-sgns --k 10 --json
"""


def _examples(verb: str, *lines: str) -> str:
    """A verb's epilog: the vectors notes, then its examples (the last line of the help)."""
    return SOURCES + "\nexamples:\n" + "".join(f"  interp embed {verb} {line}\n" for line in lines)


NEIGHBORS_EPILOG = _examples("neighbors", "king --run word2vec --metric euclidean     # a 2-D embedding",
                             "king --vectors glove.6B.100d.txt --limit 100000 --k 5",
                             "king --run word2vec --json")
AXES_EPILOG = _examples("axes", "--x she,he --y rich,poor --words doctor,nurse,king,queen --vectors glove.6B.100d.txt",
                        "--preset jobs --vectors glove.6B.100d.txt --limit 100000",
                        "--preset royalty --run word2vec --json")
PLOT_EPILOG = _examples("plot", "--run word2vec                       # the 2-D embedding as it is",
                        "--vectors glove.6B.100d.txt --limit 100000 --top 80",
                        "--run word2vec --words king,queen,man,woman --json")
BIAS_EPILOG = _examples("bias", "--vectors glove.6B.100d.txt          # occupations on the she-he axis",
                        "--axis 'she,he;her,his' --words doctor,nurse,pilot --vectors glove.6B.100d.txt",
                        "--run word2vec-sgns --json")
REPORT_EPILOG = _examples("report", "--run word2vec-sgns                # the report page's plots and tables",
                          "--vectors glove.6B.100d.txt --limit 100000 --out reports/glove",
                          "--run word2vec --json")


def register(sub, common) -> None:
    p = sub.add_parser("embed", parents=[common], help="explore word vectors: neighbours, analogies, axes, bias",
                       description="Explore the word vectors of a word2vec run or of a GloVe/word2vec text file, "
                                   "as word2viz does.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    verbs = p.add_subparsers(dest="verb", metavar="VERB")

    def verb(name: str, help_text: str, description: str, epilog: str) -> argparse.ArgumentParser:
        q = verbs.add_parser(name, parents=[common], help=help_text, description=description,
                             formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
        source = q.add_argument_group("vectors (one of)")
        source.add_argument("--run", metavar="RUN", help="word2vec run name or path (default: the most recent)")
        source.add_argument("--vectors", metavar="PATH_OR_NAME",
                            help="a GloVe or word2vec file (text, .txt.gz or binary), or a release by name: "
                                 "glove-6B-50d, glove-6B-100d, glove-6B-200d, glove-6B-300d (with --download)")
        q.add_argument("--download", action="store_true",
                       help="fetch a named --vectors release once into the data cache (online)")
        q.add_argument("--limit", type=int_in(0, 10_000_000), default=0, metavar="N",
                       help="read only the first N words of --vectors (0: all)")
        q.add_argument("--out", metavar="DIR", help="output folder (default reports/NAME/embeddings)")
        add_json(q)
        return q

    q = verb("neighbors", "nearest words to a word", "The k nearest words to WORD (cosine similarity by default).",
             NEIGHBORS_EPILOG)
    q.add_argument("word")
    q.add_argument("--k", type=int_in(1, 100_000), default=10, help="how many neighbours (default 10)")
    q.add_argument("--metric", default="cosine", choices=("cosine", "euclidean"),
                   help="cosine (default) or euclidean (often clearer for a 2-D embedding)")
    q.set_defaults(func=cmd_neighbors)

    q = verb("analogy", "A is to B as C is to ?",
             "Words nearest to B - A + C on unit vectors (3CosAdd): the answers leaving out A, B and C "
             "(the convention), and the nearest words leaving nothing out.", ANALOGY_EPILOG)
    q.add_argument("a")
    q.add_argument("b")
    q.add_argument("c")
    q.add_argument("--k", type=int_in(1, 100_000), default=5, help="how many answers in each ranking (default 5)")
    q.add_argument("--expect", metavar="WORD", help="the answer you expect: its rank and cosine in both rankings")
    q.set_defaults(func=cmd_analogy)

    q = verb("axes", "place words on axes defined by word pairs (word2viz)",
             "Place words on an x axis (and a y axis) defined by word pairs; writes a labelled scatter PNG.",
             AXES_EPILOG)
    q.add_argument("--x", metavar="AXIS", help="x axis, e.g. she,he or 'she,he;her,his'")
    q.add_argument("--y", metavar="AXIS", help="y axis, e.g. rich,poor (optional)")
    q.add_argument("--words", metavar="W1,W2,...", help="words to place")
    q.add_argument("--preset", help="a ready view instead of --x/--y/--words: gender, jobs, royalty")
    q.set_defaults(func=cmd_axes)

    q = verb("plot", "labelled 2-D scatter of the embedding",
             "The word vectors as a labelled scatter: as they are when d = 2, else their first two principal "
             "components.", PLOT_EPILOG)
    q.add_argument("--words", metavar="W1,W2,...", help="words to plot (default: the most frequent)")
    q.add_argument("--top", type=int_in(1, 100_000), default=60, help="without --words: how many frequent words (default 60)")
    q.set_defaults(func=cmd_plot)

    q = verb("bias", "occupation words on the she-he axis",
             "List occupation words by their place on an axis (default she,he), with a bar chart.", BIAS_EPILOG)
    q.add_argument("--axis", default="she,he", help="the axis (default she,he)")
    q.add_argument("--words", metavar="W1,W2,...", help="words to rank (default: a list of occupations)")
    q.set_defaults(func=cmd_bias)

    q = verb("report", "compute the report page's plots and tables",
             "The 2-D plot, a preset axes view, the bias probe, neighbour and analogy tables, saved as "
             "JSON + PNG with a summary.json for the report.", REPORT_EPILOG)
    q.set_defaults(func=cmd_report)

    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


# ---------------------------------------------------------------------- handlers


def _vectors(args):
    from ..outputs import check_output_folder
    from ..pipelines.words import load_vectors

    if getattr(args, "out", None):  # before the vectors load: nothing a user owns is written over
        check_output_folder(args.out, "embeddings")
    vectors = load_vectors(args.run, args.vectors, limit=args.limit, download=args.download)
    if args.run is None and args.vectors is None:
        print(f"Using the most recent word2vec run: {vectors.name}", file=sys.stderr)
    return vectors


def _save(result, args, vectors, stem: str | None = None) -> dict:
    """Save under --out (default reports/NAME/embeddings); the paths, by file type."""
    from pathlib import Path

    from ..pipelines.words import vectors_folder
    from ..results.words import save_result

    return save_result(result, Path(args.out) if args.out else vectors_folder(vectors), stem)


def _json(result, paths: dict) -> int:
    """``--json``: the result, its saved JSON file under "saved" (and its figure under "figure")."""
    extra = {"saved": paths["json"]}
    if "png" in paths:
        extra["figure"] = paths["png"]
    print_json(result, **extra)
    return 0


def _words(text: str | None) -> list[str] | None:
    return [w.strip() for w in text.split(",") if w.strip()] if text else None


def _num(value: float) -> str:
    return f"{value:+.3f}"


def cmd_neighbors(args) -> int:
    from ..analysis.words.geometry import nearest_neighbors

    vectors = _vectors(args)
    result = nearest_neighbors(vectors, args.word, args.k, metric=args.metric)
    paths = _save(result, args, vectors)
    if args.json:
        return _json(result, paths)
    header, fmt = ("cosine", _num) if result.metric == "cosine" else ("distance", "{:.3f}".format)
    print(f"Nearest to {result.word!r} ({vectors.source}, {result.metric}):")
    print(table(result.rows(), [("rank", "#"), ("word", "word"), ("score", header)], {"score": fmt}))
    print(f"Saved: {paths['json']}")
    return 0


def cmd_analogy(args) -> int:
    from ..analysis.words.geometry import analogy

    vectors = _vectors(args)
    result = analogy(vectors, args.a, args.b, args.c, args.k, expect=args.expect)
    paths = _save(result, args, vectors)
    if args.json:
        return _json(result, paths)
    print(printable("\n".join(analogy_lines(result)), lines=True))
    print(f"Saved: {paths['json']}")
    return 0


def _ordinal_rank(rank: int | None) -> str:
    return "-" if rank is None else f"#{rank}"


def analogy_lines(result) -> list[str]:
    """The analogy's two rankings side by side, the expected word's ranks, the note and warnings."""
    from ..analysis.words.geometry import EXCLUSION_SOURCE

    answer = result.answer if result.words else "?"
    lines = [f"{result.a} is to {result.b} as {result.c} is to {answer}  ({result.source})",
             f"3CosAdd: the words nearest to {result.b} - {result.a} + {result.c}; left, the usual convention "
             f"(A, B and C left out); right, nothing left out.", ""]
    restricted, unrestricted = result.rows(), result.rows_including_queries()
    rows = []
    for i in range(max(len(restricted), len(unrestricted))):
        row = {"rank": i + 1}
        if i < len(restricted):
            row.update(word=restricted[i]["word"], score=restricted[i]["score"])
        if i < len(unrestricted):
            u = unrestricted[i]
            row.update(all_word=u["word"] + (f" ({u['query']})" if u["query"] else ""), all_score=u["score"])
        rows.append(row)
    lines.append(table(rows, [("rank", "#"), ("word", "A, B, C left out"), ("score", "cosine"),
                              ("all_word", "nothing left out"), ("all_score", "cosine")],
                       {"score": _num, "all_score": _num}))
    lines.append("")
    ranks = ", ".join(f"{role} {w!r} {_ordinal_rank(result.query_ranks.get(w))}"
                      for role, w in result.queries.items())
    lines.append(f"Without the exclusion: {ranks} (of {result.vocab_size:,} words).")
    if result.answer_from_exclusion:
        lines.append(f"Note: {result.exclusion_note}.")
        lines.append(f"      ({EXCLUSION_SOURCE})")
    if result.expected is not None:
        role = result.query_role(result.expected)
        left_out = (f"left out (it is {role})" if result.expected_rank is None
                    else f"{_ordinal_rank(result.expected_rank)} with A, B, C left out")
        unrestricted = _ordinal_rank(result.expected_rank_including_queries)
        lines.append(f"Expected {result.expected!r}: {left_out}; {unrestricted} with nothing left out; "
                     f"cosine {_num(result.expected_score)}.")
    if result.counts is not None:
        where = f" ({result.corpus})" if result.corpus else ""
        lines.append(f"Counts in the training text{where}: "
                     + ", ".join(f"{w} {n:,}" for w, n in result.counts.items()) + ".")
    elif result.counts_note:
        lines.append(result.counts_note[:1].upper() + result.counts_note[1:] + ".")
    for warning in result.warnings:
        lines.append(f"Warning: {warning}.")
    return lines


def cmd_axes(args) -> int:
    from ..analysis.words.geometry import PRESETS, preset_projection, project
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
    paths = _save(result, args, vectors, f"axes-{args.preset}" if args.preset and not args.words else None)
    if args.json:
        return _json(result, paths)
    columns = [("word", "word"), ("x", f"x: {result.x_axis}")]
    if result.y is not None:
        columns.append(("y", f"y: {result.y_axis}"))
    rows = sorted(result.rows(), key=lambda r: -r["x"])
    print(f"{vectors.source}:")
    print(table(rows, columns, {"x": _num, "y": _num}))
    if result.skipped:
        print(f"Not in the vocabulary (left out): {printable(', '.join(result.skipped))}")
    print(f"Saved: {paths['png']}")
    return 0


def cmd_plot(args) -> int:
    from ..analysis.words.geometry import embedding_2d

    vectors = _vectors(args)
    result = embedding_2d(vectors, _words(args.words), top=args.top)
    paths = _save(result, args, vectors)
    if args.json:
        return _json(result, paths)
    how = "the vectors as they are (d = 2)" if result.method == "raw" else (
        f"first two principal components ({100 * sum(result.explained):.0f}% of the variance of these words)")
    print(f"{len(result.words)} words of {vectors.source}: {how}")
    print(f"Saved: {paths['png']}")
    return 0


def cmd_bias(args) -> int:
    from ..analysis.words.geometry import OCCUPATIONS, bias_probe

    vectors = _vectors(args)
    result = bias_probe(vectors, _words(args.words) or OCCUPATIONS, args.axis)
    paths = _save(result, args, vectors)
    if args.json:
        return _json(result, paths)
    a, b = result.pairs[0]
    print(f"Words on the {result.axis} axis ({vectors.source}); positive: nearer {a!r}, negative: nearer {b!r}")
    print(table(result.rows(), [("word", "word"), ("score", "cosine")], {"score": _num}))
    if result.skipped:
        print(f"Not in the vocabulary (left out): {printable(', '.join(result.skipped))}")
    print("This is correlation in the training text, not a cause; see `interp embed report` for the note.")
    print(f"Saved: {paths['png']}")
    return 0


def cmd_report(args) -> int:
    from pathlib import Path

    from ..pipelines.words import run_embedding_analyses, vectors_folder

    vectors = _vectors(args)
    folder = Path(args.out) if args.out else vectors_folder(vectors)
    report = run_embedding_analyses(vectors, folder)
    if args.json:
        print_json(report, saved=folder / "summary.json")
        return 0
    print(f"Embedding analyses of {vectors.source} in {folder}/:")
    for label, value in (("2-D plot", report.plot), ("axes view", report.projection), ("bias probe", report.bias)):
        print(f"  {label:<11} {value or '-'}")
    print(f"  neighbours  {printable(', '.join(report.neighbors)) or '-'}")
    print(f"  analogies   {printable(', '.join(report.analogies)) or '-'}")
    for note in report.skipped:
        print(f"  skipped: {note}")
    return 0
