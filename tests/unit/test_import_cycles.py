"""No module of pitstop imports, directly or not, a module that imports it back (import-linter checks the tiers)."""

from __future__ import annotations

import grimp


def test_pitstop_has_no_import_cycles() -> None:
    graph = grimp.build_graph("pitstop")
    assert len(graph.modules) > 80  # the whole package was read
    cycles = [(module, imported) for module in sorted(graph.modules)
              for imported in graph.find_modules_directly_imported_by(module)
              if imported.startswith("pitstop") and graph.find_shortest_chain(imported, module)]
    assert cycles == []
