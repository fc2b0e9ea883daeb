"""The package has no import circles: no module imports, directly or through others, a module that imports it,
whether the import is at the top of a file or inside a function (a circle hidden in a function is still one)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import ROOT

SRC = ROOT / "src"


def modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / "reslab").rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def imports(path: Path, known: set[str]) -> set[str]:
    """The reslab modules a file imports: `import a.b` -> a.b; `from a import b` -> a.b if that is a module, else a."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names} & known
            found |= subs or {node.module}
    return found & known


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, done = [], set()

    def walk(node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in path:
                found.append(path[path.index(nxt) :] + [nxt])
            elif (node, nxt) not in done:
                done.add((node, nxt))
                walk(nxt, path + [nxt])

    for start in sorted(graph):
        walk(start, [start])
    return found


def test_no_module_of_reslab_imports_itself_through_others():
    mods = modules()
    graph = {name: imports(path, set(mods)) - {name} for name, path in mods.items()}
    found = circles(graph)
    assert not found, "import circles:\n" + "\n".join(" -> ".join(c) for c in found[:10])


def test_the_checker_sees_a_circle_hidden_in_a_function(tmp_path):
    a = tmp_path / "a.py"
    a.write_text("import pkg.b\n")
    b = tmp_path / "b.py"
    b.write_text("def f():\n    from pkg import a\n")
    known = {"pkg.a", "pkg.b"}
    graph = {"pkg.a": imports(a, known), "pkg.b": imports(b, known)}
    assert circles(graph) and circles(graph)[0][0] == circles(graph)[0][-1]


@pytest.mark.slow  # starts a process
def test_a_run_s_process_leaves_out_the_imports_it_does_not_use():
    # A run's fixed cost is mostly imports (the bench's fixed-cost section): torchvision (its models and ops) is
    # imported only to decode a JPEG copy into the cache, and scipy.signal only came with torchmetrics >= 1.4.
    import subprocess
    import sys

    probe = "import sys, reslab.train; print(sorted({'torchvision', 'scipy.signal'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
