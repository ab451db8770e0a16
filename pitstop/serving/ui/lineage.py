"""The lineage graph: sources → feature views → feature services → model versions → datasets, as SVG.

Laid out in five columns on the server (no JavaScript): every node is a link to its page, edges
are drawn between columns. Model versions shown are the ones an alias points at plus each model's
latest, so a model with thousands of versions stays one or two nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

COLUMNS = ("source", "view", "service", "model", "dataset")
TITLES = {"source": "Sources", "view": "Feature views", "service": "Feature services", "model": "Model versions",
          "dataset": "Training datasets"}
NODE_W, NODE_H, GAP_Y, COL_W, TOP = 210, 30, 12, 250, 50
MAX_VIEWS = 200
"""Past this many feature views, only those a feature service uses are drawn (the rest are listed on /ui/views)."""


@dataclass
class Node:
    id: str
    column: str
    label: str
    href: str
    x: int = 0
    y: int = 0


@dataclass
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    width: int = 0
    height: int = 0
    hidden_views: int = 0
    """Feature views left out because there were more than ``MAX_VIEWS`` and no service used them."""

    def add(self, node: Node) -> None:
        self.nodes.setdefault(node.id, node)

    def link(self, a: str, b: str) -> None:
        if a in self.nodes and b in self.nodes and (a, b) not in self.edges:
            self.edges.append((a, b))


def build(store: Any) -> Graph:
    """The graph of everything registered (aliased and latest model versions only)."""
    contents = store.definitions()
    g = Graph()
    for source in contents.sources.values():
        g.add(Node(f"source:{source.name}", "source", source.name, f"/ui/views?source={quote(source.name)}"))
    used = {ref.split(":")[0] for s in contents.services.values() for ref in s.feature_refs}
    used |= {upstream for odfv in contents.on_demand.values() for upstream, _ in odfv.view_inputs()}
    views = list(contents.views.values())
    if len(views) > MAX_VIEWS:
        g.hidden_views = sum(v.name not in used for v in views)
        views = [v for v in views if v.name in used]
    for view in views:
        g.add(Node(f"view:{view.name}", "view", view.name, f"/ui/views/{quote(view.name)}"))
        g.link(f"source:{view.source.name}", f"view:{view.name}")
    for odfv in contents.on_demand.values():
        g.add(Node(f"view:{odfv.name}", "view", f"{odfv.name} (on demand)", f"/ui/views/{quote(odfv.name)}"))
        for upstream, _ in odfv.view_inputs():
            g.link(f"view:{upstream}", f"view:{odfv.name}")
    for service in contents.services.values():
        g.add(Node(f"service:{service.name}", "service", service.name, f"/ui/services/{quote(service.name)}"))
        for view_name in dict.fromkeys(ref.split(":")[0] for ref in service.feature_refs):
            g.link(f"view:{view_name}", f"service:{service.name}")
    shown: dict[tuple[str, int], list[str]] = {}
    for alias in store.models.aliases():
        shown.setdefault((alias.name, alias.version), []).append(alias.alias)
    summaries, total = store.models.summaries(0, 200)
    for name, _count, latest in summaries:
        shown.setdefault((name, latest), [])
    for (name, version), aliases in sorted(shown.items()):
        try:
            mv = store.models.get(name, version)
        except Exception:  # noqa: BLE001 - a version that vanished between the two reads: leave it out
            continue
        label = f"{name} v{version}" + (f" @{','.join(sorted(aliases))}" if aliases else "")
        node_id = f"model:{name}:{version}"
        g.add(Node(node_id, "model", label, f"/ui/models/{quote(name)}"))
        if mv.feature_service:
            g.link(f"service:{mv.feature_service}", node_id)
        if mv.dataset_id:
            g.add(Node(f"dataset:{mv.dataset_id}", "dataset", mv.dataset_id[:15], f"/ui/datasets/{quote(mv.dataset_id)}"))
            g.link(node_id, f"dataset:{mv.dataset_id}")
    _layout(g)
    return g


def _layout(g: Graph) -> None:
    rows = dict.fromkeys(COLUMNS, 0)
    for node in g.nodes.values():
        column = COLUMNS.index(node.column)
        node.x = 20 + column * COL_W
        node.y = TOP + rows[node.column] * (NODE_H + GAP_Y)
        rows[node.column] += 1
    g.width = 40 + len(COLUMNS) * COL_W
    g.height = TOP + max(rows.values() or [1]) * (NODE_H + GAP_Y) + 20


def edge_path(g: Graph, a: str, b: str) -> str:
    """A smooth SVG path from the right side of node ``a`` to the left side of node ``b``."""
    start, end = g.nodes[a], g.nodes[b]
    x1, y1 = start.x + NODE_W, start.y + NODE_H // 2
    x2, y2 = end.x, end.y + NODE_H // 2
    if start.column == end.column:  # an on-demand view fed by a view: a loop on the right
        return f"M{x1},{y1} C{x1 + 30},{y1} {x1 + 30},{y2} {x1},{y2}"
    mid = (x1 + x2) // 2
    return f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"
