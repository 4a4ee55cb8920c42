"""The run page's "Over training" section: the saved ``interp dynamics`` result (rendered, never computed here)."""

from __future__ import annotations

from ..io import read_json_object
from .registry import ReportContext, Section

FOLDER = "dynamics"


def contribute(ctx: ReportContext) -> None:
    index = read_json_object(ctx.root / FOLDER / "index.json")
    if not index or index.get("kind") != "dynamics":
        return
    rows = []
    for name, s in (index.get("series") or {}).items():
        phase = s.get("phase") or {}
        values = s.get("values") or [None]
        rows.append({"name": name, "title": s.get("title", name), "first": values[0], "last": values[-1],
                     "null": s.get("null") or [], "status": phase.get("status"), "step": phase.get("step"),
                     "reason": phase.get("reason", "")})
    claims = [{"claim": c.get("claim"), "first": c.get("first_supported"),
               "last": (c.get("statuses") or ["-"])[-1]} for c in index.get("claims") or []]
    figure = f"{FOLDER}/{(index.get('files') or {}).get('figure', 'dynamics.png')}"
    steps = index.get("steps") or [0]
    ctx.page("index.html").add(Section("dynamics", "Over training", "dynamics.html", {
        "figure": figure if (ctx.root / figure).is_file() else None, "rows": rows, "claims": claims,
        "n": len(steps), "last_step": steps[-1], "coincide": index.get("coincide") or {},
        "seed_summary": index.get("seed_summary") or {}}, order=38))
