"""Circuit pages, Distill style: the circuit as a figure of units by layer, the faithfulness
curve against random circuits, the strongest edges.

Rendering only: every circuit saved under the report's ``circuits/`` (``interp circuit``,
:mod:`interp.results.circuits`) gets a page ``circuits/NAME.html``, listed on
``circuits.html``. The diagram draws the kept circuit's strongest edges (at most
:data:`MAX_DRAWN`) as SVG lines, width ~ |score|, red where patching the edge lowers the
metric (it carries what the clean input adds) and blue where it raises it; nodes sit in
one column per layer, each drawn as its unit's feature visualisation when the report has
one saved, else the top dataset examples, else a label, and linked to the unit's page
when the report has one. No script, no external file: the SVG is inline.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InterpError
from ..io import read_json_object
from ..results.circuits import FOLDER, saved_circuits
from .registry import ReportContext, Section

MAX_DRAWN = 40
"""Edges drawn in a diagram: the kept circuit's strongest (the table lists more)."""
HEAD_INPUTS = {"q": 0.2, "k": 0.5, "v": 0.8}
"""Where on a head's box an edge into its query, key or value input ends (fraction of its height)."""
TABLE_EDGES = 40
NODE = 44            # node square, px
ROW = 62             # vertical distance between nodes
COLUMN = 190         # horizontal distance between layers
MARGIN = 36
MAX_WIDTH = 9.0      # stroke width of the strongest drawn edge
POSITIVE, NEGATIVE = "#2166ac", "#b2182b"


def contribute(ctx: ReportContext) -> None:
    saved = saved_circuits(ctx.root)
    if not saved:
        return
    run = ctx.run
    rows = []
    for folder, index in saved:
        path = f"{FOLDER}/{folder.name}.html"
        rows.append({**_headline(index), "page": path, "name": folder.name})
        _circuit_page(ctx, folder, index, path)
    listing = ctx.page("circuits.html", "Circuits", breadcrumbs=[(run.name, "index.html")],
                       subtitle="Circuits found by edge scores, each judged against random circuits of its size.")
    listing.add(Section("circuits", "Saved circuits", "circuit_list.html", {"rows": rows}, order=10))
    ctx.nav.append(("Circuits", "circuits.html"))
    ctx.page("index.html").add(Section("circuits-link", "Circuits", "link.html", {
        "href": "circuits.html", "text": f"{len(rows)} circuit{'s' if len(rows) != 1 else ''}: edges, faithfulness "
                                         f"against random circuits"}, order=36))


def _headline(index: dict) -> dict:
    at = index.get("at", {})
    graph = index.get("settings", {}).get("graph", {})
    ci = at.get("ci") or [None, None]
    return {"method": index.get("method"), "metric": index.get("metric"), "size": index.get("size"),
            "n_edges": index.get("n_edges"), "faithfulness": at.get("faithfulness"), "ci_low": ci[0],
            "ci_high": ci[1], "random_mean": at.get("random_mean"), "random_high": at.get("random_high"),
            "beats_random": index.get("beats_random"), "clean": graph.get("clean_class"),
            "corrupted": graph.get("corrupted_class") or graph.get("corrupted"), "n": graph.get("n")}


def _circuit_page(ctx: ReportContext, folder: Path, index: dict, path: str) -> None:
    head = _headline(index)
    page = ctx.page(path, f"Circuit: {head['method']} on {head['metric']}",
                    breadcrumbs=[(ctx.run.name, "index.html"), ("Circuits", "circuits.html")],
                    subtitle=f"{head['size']} of {head['n_edges']} edges kept · {folder.name}")
    images = NodeImages(ctx)
    page.add(Section("diagram", "The circuit", "circuit_diagram.html",
                     diagram(index, images, ctx.pages), order=10))
    curve = index.get("curve", {})
    figure = f"{FOLDER}/{folder.name}/{index.get('files', {}).get('figure', 'faithfulness.png')}"
    page.add(Section("faithfulness", "Faithfulness against random circuits", "circuit_faithfulness.html", {
        **head, "figure": figure if (ctx.root / figure).is_file() else None, "threshold": curve.get("threshold"),
        "minimal_size": curve.get("minimal_size"), "n_random": len((curve.get("random") or [[]])[0]),
        "n_examples": curve.get("n_examples"), "full": curve.get("full_metric"),
        "empty": curve.get("empty_metric"), "rows": _curve_rows(curve)}, order=20))
    page.add(Section("edges", "Strongest edges", "circuit_edges.html", {
        "edges": [{**row, "source_page": _unit_page(row["source"], ctx.pages),
                   "target_page": _unit_page(row["target"], ctx.pages)}
                  for row in index.get("circuit", [])[:TABLE_EDGES]],
        "size": head["size"], "positive": POSITIVE, "negative": NEGATIVE}, order=30))
    page.add(Section("settings", "Settings", "circuit_settings.html", {
        "settings": [(k, json.dumps(v, sort_keys=True)) for k, v in sorted(index.get("settings", {}).items())],
        "seconds": index.get("seconds"), "folder": f"{FOLDER}/{folder.name}"}, order=40))


def _curve_rows(curve: dict) -> list[dict]:
    return [{"size": k, "faithfulness": f, "ci": c, "random_mean": m, "random_high": h}
            for k, f, c, m, h in zip(curve.get("sizes", []), curve.get("faithfulness", []), curve.get("ci", []),
                                     curve.get("random_mean", []), curve.get("random_high", []))]


def _split(node: str) -> tuple[str, int | None]:
    layer, _, unit = node.rpartition(":")
    return (layer, int(unit)) if layer and unit.isdigit() else (node, None)


def _unit_page(node: str, pages: dict) -> str | None:
    layer, unit = _split(node)
    target = f"{layer}/{unit}.html"
    return target if unit is not None and target in pages else None


class NodeImages:
    """A unit's picture in the report folder: its feature visualisation (the report's main
    rendering, else ``interp visualize``'s), else its top dataset examples, else None."""

    def __init__(self, ctx: ReportContext):
        self.ctx = ctx
        self._by_layer: dict[str, tuple[str, dict] | None] = {}

    def __call__(self, node: str) -> str | None:
        layer, unit = _split(node)
        if unit is None:
            return None
        if layer not in self._by_layer:
            self._by_layer[layer] = self._find(layer)
        found = self._by_layer[layer]
        if found is None:
            return None
        folder, files = found
        name = files.get(str(unit))
        return f"{folder}/{name}" if name else None

    def _find(self, layer: str) -> tuple[str, dict] | None:
        root = self.ctx.root
        featvis = self._featvis(layer)
        if featvis is not None:
            folder, index = featvis
            return folder, {u: e["images"][0] for u, e in index.get("units", {}).items() if e.get("images")}
        index = read_json_object(root / "examples" / layer / "index.json")
        if index and index.get("kind") == "examples":
            return f"examples/{layer}", {u: e["top"]["file"] for u, e in index.get("units", {}).items()}
        return None

    def _featvis(self, layer: str) -> tuple[str, dict] | None:
        root, run = self.ctx.root, self.ctx.run
        try:
            from ..results.vision import find_featvis
            from .vision import featvis_views

            info = run.layer(layer)
            found = find_featvis(root, layer, info.units, featvis_views(self.ctx, info)["main"])
        except (InterpError, KeyError, TypeError, ValueError, IndexError):  # not an image model's layer
            found = None
        if found is not None:
            return found[0].relative_to(root).as_posix(), found[1]
        index = read_json_object(root / "featvis" / layer / "index.json")  # interp visualize, any settings
        if index and index.get("kind") == "featvis":
            return f"featvis/{layer}", index
        return None


def diagram(index: dict, image_of, pages: dict) -> dict:
    """The SVG's data: nodes by layer (columns), the kept circuit's strongest edges as lines.

    >>> diagram(index, lambda node: None, {})["edges"][0]["width"]
    9.0
    """
    circuit = index.get("circuit", [])
    drawn = circuit[:MAX_DRAWN]
    layers = list(index.get("layers", []))
    order = {node: i for nodes in index.get("nodes", []) for i, node in enumerate(nodes)}
    used: dict[str, list[str]] = {layer: [] for layer in layers}
    layer_of = {node: layer for layer, nodes in zip(layers, index.get("nodes", [])) for node in nodes}
    def node_of(name: str) -> str:
        """The node an edge end names: ``L1H0.k`` (a head's key input) is drawn at node ``L1H0``."""
        base = name.rsplit(".", 1)[0]
        return base if name not in layer_of and base in layer_of else name

    ends = [(node_of(row["source"]), node_of(row["target"])) for row in drawn]
    for pair in ends:
        for node in pair:
            layer = layer_of.get(node, _split(node)[0])
            if layer not in used:
                used[layer] = []
                layers.append(layer)
            if node not in used[layer]:
                used[layer].append(node)
    columns = [layer for layer in layers if used[layer]]
    tallest = max((len(used[layer]) for layer in columns), default=1)
    height = 2 * MARGIN + (tallest - 1) * ROW + NODE + 16
    where = {}
    nodes = []
    for c, layer in enumerate(columns):
        column = sorted(used[layer], key=lambda n: order.get(n, 0))
        top = MARGIN + (tallest - len(column)) * ROW / 2
        for r, node in enumerate(column):
            x, y = MARGIN + c * COLUMN, top + r * ROW
            where[node] = (x, y)
            nodes.append({"id": node, "x": x, "y": y, "size": NODE, "image": image_of(node),
                          "page": _unit_page(node, pages), "label": node})
    strongest = max((abs(row["score"]) for row in drawn), default=0.0) or 1.0
    edges = []
    for row, (source, target) in reversed(list(zip(drawn, ends))):  # the strongest drawn last, on top
        (x1, y1), (x2, y2) = where[source], where[target]
        # a head's query, key and value inputs enter its box at the top, middle and bottom
        entry = HEAD_INPUTS.get(row["target"].rsplit(".", 1)[-1], 0.5) if row["target"] != target else 0.5
        edges.append({"x1": x1 + NODE, "y1": y1 + NODE / 2, "x2": x2, "y2": y2 + NODE * entry,
                      "width": round(max(0.6, MAX_WIDTH * abs(row["score"]) / strongest), 2),
                      "colour": NEGATIVE if row["score"] < 0 else POSITIVE, "title": f"{row['edge']}: "
                      f"{row['score']:+.4g}"})
    heads = any(row["target"] != target for row, (_, target) in zip(drawn, ends))
    return {"heads": heads, "width": MARGIN * 2 + max(0, len(columns) - 1) * COLUMN + NODE + 40, "height": height,
            "columns": [{"label": layer, "x": MARGIN + c * COLUMN + NODE / 2} for c, layer in enumerate(columns)],
            "nodes": nodes, "edges": edges, "drawn": len(drawn), "size": index.get("size", len(circuit)),
            "positive": POSITIVE, "negative": NEGATIVE}
