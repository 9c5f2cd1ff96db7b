"""Counts the imports between the project's apps: the figures the architecture notes quote.

    python .ci/app_imports.py [ROOT]

Reads every module of every app (migrations and tests left out) with `ast`, function-local imports included, and
prints: connected app pairs, pairs importing each other both ways, cross-app imports (and how many sit inside a
function), imports that go up the stack of docs/architecture.md, the import cycles between apps (strongly
connected components of the app graph), and the lines of Python in the apps.
"""

import ast
import sys
from collections import defaultdict
from pathlib import Path

# Top to bottom; apps on one floor share a number.
STACK = [
    ("config",),
    ("demo",),
    ("members", "staff"),
    ("payouts",),
    ("commissions",),
    ("shops",),
    ("networks",),
    ("referrals",),
    ("accounts",),
    ("core",),
]
FLOOR = {app: n for n, apps in enumerate(STACK) for app in apps}
# No import may go up: shops and networks announce what happened through their signals (a port commissions plugs
# into). Pairs (importing module prefix, imported module prefix) listed here would be exempted.
ALLOWED_UP: set[tuple[str, str]] = set()


def _modules(root):
    for app in FLOOR:
        base = root / app
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(root)
            if "migrations" in rel.parts or ".venv" in rel.parts:
                continue
            yield app, ".".join(rel.with_suffix("").parts).removesuffix(".__init__"), path


def _imports(tree, module):
    """(imported module, inside a function?) for each import statement."""
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = module.split(".")[: -child.level] if not module.endswith("__init__") else module.split(".")
                    name = ".".join(base + ([child.module] if child.module else []))
                else:
                    name = child.module or ""
                found.append((name, in_function))
            visit(child, inner)

    visit(tree, False)
    return found


def _sccs(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
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
            out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return [c for c in out if len(c) > 1]


def main(root):
    root = Path(root)
    graph = defaultdict(set)
    total = in_functions = upward = lines = 0
    up_list = []
    for app, module, path in _modules(root):
        text = path.read_text(encoding="utf-8")
        lines += text.count("\n")
        for name, in_function in _imports(ast.parse(text), module):
            target = name.split(".")[0]
            if target not in FLOOR or target == app:
                continue
            total += 1
            in_functions += in_function
            graph[app].add(target)
            declared = any(module.startswith(a) and name.startswith(b) for a, b in ALLOWED_UP)
            if FLOOR[target] <= FLOOR[app] and not declared:
                upward += 1
                up_list.append(f"{module} -> {name}")
    pairs = {frozenset((a, b)) for a, bs in graph.items() for b in bs}
    two_way = sorted(tuple(sorted(p)) for p in pairs if all(b in graph[a] for a, b in [tuple(p), tuple(p)[::-1]]))
    cycles = _sccs(graph)
    print(f"connected app pairs: {len(pairs)}")
    print(f"pairs importing both ways: {len(two_way)} {two_way}")
    print(f"cross-app imports: {total}, inside functions: {in_functions}")
    print(f"upward imports: {upward}")
    for item in up_list:
        print(f"  {item}")
    print(f"app import cycles: {len(cycles)} {cycles}")
    print(f"lines of Python in the apps (migrations left out): {lines}")
    # The stack holds only with every cross-app import at the top of its module (a function-local one hides a
    # dependency from the reader and from import-linter's picture), none going up and no two apps in a cycle.
    return 0 if not (two_way or in_functions or upward or cycles) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent))
