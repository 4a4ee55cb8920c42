"""Plain text for the terminal: tables, percentages, run summaries, user strings made safe.

The CLI, the pipelines (the demo prints as it goes) and notebooks print the same text,
so it lives here rather than in :mod:`interp.cli`.

>>> print(table([{"name": "conv1", "units": 6}], [("name", "layer"), ("units", "units")]))
layer  units
-----  -----
conv1  6
"""

from __future__ import annotations


def printable(text: object, *, lines: bool = False) -> str:
    r"""``text`` with control characters escaped (ESC becomes the four characters ``\x1b``): words and
    class names come from users' files, and a terminal must not run their escape sequences. ``lines``:
    keep newlines (text of several lines); a table cell escapes them too.

    >>> printable("cat\x1b[31m")
    'cat\\x1b[31m'
    """
    keep = "\n" if lines else ""
    return "".join(ch if ch.isprintable() or ch == " " or ch in keep else ascii(ch)[1:-1] for ch in str(text))


def table(rows: list[dict], columns: list[tuple[str, str]], formats: dict | None = None) -> str:
    """A plain-text table: ``columns`` are (key, header) pairs; every cell :func:`printable`."""
    formats = formats or {}

    def cell(row, key):
        value = row.get(key)
        if value is None:
            return "-"
        fmt = formats.get(key)
        return printable(fmt(value) if fmt else value)

    body = [[cell(r, k) for k, _ in columns] for r in rows]
    headers = [h for _, h in columns]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths)) for b in body]
    return "\n".join(lines)


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def format_summary(run) -> str:
    """A run's summary in a few lines: accuracy or loss, parameters, training time, per-class accuracy."""
    s = run.summary or {}
    lines = [f"Run {run.name}: {run.config.model} on {run.config.data.name}  ->  {run.path}"]
    if "test_acc" in s:
        lines.append(f"  test accuracy {pct(s['test_acc'])}   parameters {s['parameters']:,}   "
                     f"training {s['train_seconds']:.1f}s on {s['device']}")
        per_class = s.get("per_class_acc") or []
        if per_class:
            lines.append("  per class: " + ", ".join(f"{printable(k)} {pct(v)}"
                                                    for k, v in zip(s["classes"], per_class)))
    elif "val_loss" in s:
        lines.append(f"  validation loss {s['val_loss']:.4f}   parameters {s['parameters']:,}   "
                     f"training {s['train_seconds']:.1f}s")
    if s.get("stopped_early"):
        lines.append(f"  stopped early: {s['stopped_early']}")
    return "\n".join(lines)


def _headline_text(h: dict) -> str | None:
    """``0.49 [0.48, 0.50] vs 0.04`` for a claim's headline (None when a check has none)."""
    if not h or h.get("value") is None:
        return None
    text = f"{h['value']:.3g}"
    if h.get("ci_low") is not None:
        text += f" [{h['ci_low']:.3g}, {h['ci_high']:.3g}]"
    if h.get("null_quantile") is not None:
        text += f" vs {h['null_quantile']:.3g}"
    return text


def claims_table(results: list, *, width: int = 100) -> str:
    """Claim results (:class:`~interp.claims.registry.ClaimResult`) as a plain-text table (claim,
    verdict, headline, units found), then each verdict's reason and notes in full.

    >>> print(claims_table(check_claims(run, ["weight-banding"])))
    """
    import textwrap

    rows = []
    for r in results:
        found = ", ".join(r.found[:6]) + (f" (+{len(r.found) - 6})" if len(r.found) > 6 else "")
        rows.append({"claim": r.claim, "verdict": r.status, "found": found or None, "layer": r.layer or None,
                     "headline": _headline_text(r.headline)})
    lines = [table(rows, [("claim", "claim"), ("verdict", "verdict"), ("headline", "value [95% CI] vs null"),
                          ("layer", "layer"), ("found", "found")]), ""]
    for r in results:
        lines.append(textwrap.fill(f"{r.claim}: {r.verdict.reason}", width=width, subsequent_indent="    "))
        for note in r.notes:
            lines.append(textwrap.fill(f"note: {note}", width=width, initial_indent="    ",
                                       subsequent_indent="    "))
    return "\n".join(lines)


def circuit_verdict(result) -> str:
    """The kept circuit's faithfulness, its CI and the random band, in one sentence (CLI and demo)."""
    at = result.at()
    how = "--top" if result.settings.get("top") else (
        f"the smallest reaching {result.curve.threshold:g}" if result.curve.minimal_size == result.size
        else f"none reaches {result.curve.threshold:g}: the most faithful size")
    beats = "above" if result.beats_random() else "NOT above"
    return (f"Kept {result.size:,} of {result.n_edges:,} edges ({how}): faithfulness {at['faithfulness']:.3f} "
            f"[{at['ci'][0]:.3f}, {at['ci'][1]:.3f}] (95% CI over {result.curve.n_examples} examples); random band "
            f"at that size: mean {at['random_mean']:.3f}, 95% quantile {at['random_high']:.3f} over "
            f"{len(result.curve.random[0])} circuits: the CI is {beats} the random band.")
