#!/usr/bin/env python3
"""Check that each crate's folders are its layers.

For every top-level module of tahoe-core (`tahoe-core/src/`) and of the
`tahoe` binary's library (`src/`), print the top-level modules it imports
(through `crate::...` paths and `use` lines), then fail when one imports a
module of a later layer than its own, two siblings of one layer import each
other, or the imports form a cycle. The orders are written at the top of
each crate's lib.rs; they are repeated here so that this script needs
nothing but Python.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Each crate: its source folder and its layers, first to last. Modules of
# one layer may not import each other; a module imports only from layers
# listed before its own. `outside` modules (tests' helpers) may import
# anything and nothing may import them.
CRATES = {
    "tahoe-core": {
        "src": "tahoe-core/src",
        "layers": [
            ["error"],
            ["blocking", "base32", "time", "state"],
            ["kinds"],
            ["format"],
            ["protocol"],
            ["server", "client"],
            ["plugin"],
        ],
        "outside": ["testing"],
    },
    "tahoe": {
        "src": "src",
        "layers": [
            ["basedir", "plugins"],
            ["client"],
            ["fs"],
            ["web"],
            ["s3"],
            ["node"],
            ["cli"],
        ],
        "outside": [],
    },
}

PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
PATH2 = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)::([a-z_][a-z0-9_]*)")
USE_GROUP = re.compile(r"\buse\s+crate::\{([^;]*)\};", re.S)
COMMENT = re.compile(r"//[^\n]*")


def top_module(src: pathlib.Path, file: pathlib.Path) -> str:
    rel = file.relative_to(src)
    return rel.parts[0].removesuffix(".rs")


def imports(text: str) -> set:
    text = COMMENT.sub("", text)
    found = set(PATH.findall(text))
    for group in USE_GROUP.findall(text):
        for item in group.split(","):
            name = item.strip().split("::")[0].strip()
            if name:
                found.add(name)
    return found


def check(name: str, spec: dict) -> list:
    src = ROOT / spec["src"]
    layer_of = {}
    for i, layer in enumerate(spec["layers"]):
        for m in layer:
            layer_of[m] = i
    outside = set(spec["outside"])
    graph = {}
    for file in sorted(src.rglob("*.rs")):
        if file.name in ("lib.rs", "main.rs") and file.parent == src:
            continue
        mod = top_module(src, file)
        deps = imports(file.read_text()) - {mod}
        graph.setdefault(mod, set()).update(deps)
    problems = []
    print(f"{name} ({spec['src']}):")
    for mod in sorted(graph):
        deps = sorted(d for d in graph[mod] if d in layer_of or d in outside)
        print(f"  {mod:<10} imports {', '.join(deps) if deps else '(nothing)'}")
        if mod not in layer_of and mod not in outside:
            problems.append(f"{name}: {mod} is in no layer (add it to scripts/layers.py and lib.rs)")
            continue
        for d in deps:
            if d in outside:
                problems.append(f"{name}: {mod} imports {d}, which nothing may import")
            elif mod in outside:
                continue
            elif layer_of[d] > layer_of[mod]:
                problems.append(f"{name}: {mod} imports {d}, a later layer")
            elif layer_of[d] == layer_of[mod]:
                problems.append(f"{name}: {mod} imports {d}, a sibling in its layer")
    # Cycles among top-level modules (beyond what the layers already catch).
    state = {}

    def visit(m, stack):
        state[m] = 1
        for d in graph.get(m, ()):
            if d not in graph:
                continue
            if state.get(d) == 1:
                cycle = stack[stack.index(d):] + [d]
                problems.append(f"{name}: import cycle {' -> '.join(cycle)}")
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    problems += inner_cycles(name, src)
    return problems


def inner_cycles(name: str, src: pathlib.Path) -> list:
    """Cycles between the modules inside one folder (`format::cap` and
    `format::ssk`, say): a folder's modules must be in an order too."""
    graph = {}
    for file in sorted(src.rglob("*.rs")):
        rel = file.relative_to(src)
        if len(rel.parts) < 2:
            continue
        top = rel.parts[0]
        sub = rel.parts[1].removesuffix(".rs")
        if sub == "mod":
            continue
        text = COMMENT.sub("", file.read_text())
        deps = {b for a, b in PATH2.findall(text) if a == top and b != sub}
        graph.setdefault(f"{top}::{sub}", set()).update(f"{top}::{d}" for d in deps)
    problems, state = [], {}

    def visit(m, stack):
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if d not in graph:
                continue
            if state.get(d) == 1:
                cycle = stack[stack.index(d):] + [d]
                problems.append(f"{name}: import cycle {' -> '.join(cycle)}")
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return problems


def main() -> int:
    problems = []
    for name, spec in CRATES.items():
        problems += check(name, spec)
    for p in problems:
        print("LAYERS:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
