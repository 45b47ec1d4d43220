"""web/ stays acyclic: no module in web/ imports (directly or through others) a module that imports
it back, and no API resource imports its own package's ``__init__`` for anything (it is empty)."""

from __future__ import annotations

from pathlib import Path

import grimp

import web.api


def test_no_import_cycles_in_web():
    graph = grimp.build_graph("web", "automations", "actions", "triggers", "providers")
    cycles = []
    for module in sorted(m for m in graph.modules if m.startswith("web")):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported.startswith("web") and graph.chain_exists(importer=imported, imported=module):
                cycles.append((module, imported))
    assert cycles == []


def test_api_package_init_imports_nothing():
    source = Path(web.api.__file__).read_text()
    assert "import" not in source.split('"""')[-1]
