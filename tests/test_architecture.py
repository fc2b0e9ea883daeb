"""The package's shape, as docs/layout.md states it: modules grouped by concern, no import circles between modules or
between packages, a small top level, and reports that read run files only (they never compose a Hydra config or read
conf/). Checked on the source's AST: nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "reslab"
# docs/layout.md's order: a package imports only from those before it.
LAYERS = ["errors", "io", "paths", "options", "flat", "data", "models", "summary", "probes", "training", "run",
          "tracking", "report", "analysis", "train", "reproduce", "bench"]  # fmt: skip


def modules() -> dict[str, Path]:
    out = {}
    for f in SRC.rglob("*.py"):
        parts = f.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = f
    return out


def imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the reslab modules it imports (anywhere in it, also inside functions)."""

    def resolve(name: str) -> str:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name

    edges = {}
    for name, f in mods.items():
        found = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                found |= {resolve(a.name) for a in node.names if a.name.startswith("reslab")}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("reslab"):
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    found.add(full if full in mods else resolve(node.module))
        edges[name] = found - {name, "reslab"}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def package(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def test_no_module_imports_another_that_imports_it_back():
    assert cycles(imports(modules())) == []


def test_packages_import_only_downward_in_the_documented_order():
    upward = []
    for m, targets in imports(modules()).items():
        for t in targets:
            a, b = package(m), package(t)
            if a != b and LAYERS.index(b) > LAYERS.index(a):
                upward.append(f"{m} -> {t}")
    assert upward == []


def test_every_package_and_top_level_module_has_its_place_in_the_layers():
    names = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    names |= {p.stem for p in SRC.glob("*.py") if p.stem != "__init__"}
    assert sorted(names - set(LAYERS)) == []


def test_the_top_level_keeps_only_entry_points_and_a_few_leaves():
    top = sorted(p.stem for p in SRC.glob("*.py") if p.stem != "__init__")
    assert len(top) <= 12, top


def test_reports_never_compose_a_config_or_read_conf():
    offenders = []
    for f in (SRC / "report").rglob("*.py"):
        text = f.read_text()
        for needle in ("CONF_DIR", "initialize_config_dir", "compose(", "hydra"):
            if needle in text:
                offenders.append(f"{f.name}: {needle}")
    assert offenders == []
