"""The package's shape, read from its source with ``ast`` (imports inside functions included): no import cycle, no
module reaching into another module's underscore names, no module over 800 lines (issue 16)."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "trackpose"
MAX_LINES = 800


def modules() -> dict:
    """Dotted module name -> path, for every module of the package (``trackpose.io`` for io/__init__.py)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(known: dict) -> dict:
    """Module -> {imported package module: [(line, name used from it)]}; names are '' for whole-module imports."""
    graph = {}
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        edges = graph.setdefault(module, {})
        aliases = {}  # local name -> package module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = _absolute(module, node, path.name == "__init__.py")
                if not source.startswith("trackpose"):
                    continue
                for alias in node.names:
                    child = f"{source}.{alias.name}"
                    if child in known:  # from package import module
                        edges.setdefault(child, []).append((node.lineno, ""))
                        aliases[alias.asname or alias.name] = child
                    else:
                        edges.setdefault(source, []).append((node.lineno, alias.name))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("trackpose"):
                        edges.setdefault(alias.name, []).append((node.lineno, ""))
                        if alias.asname:
                            aliases[alias.asname] = alias.name
        for node in ast.walk(tree):  # module._name attribute use
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                edges.setdefault(aliases[node.value.id], []).append((node.lineno, node.attr))
        edges.pop(module, None)
    return graph


def cycles(graph: dict) -> list:
    """Every strongly connected component with more than one module (Tarjan), as sorted lists."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _is_ancestor(package: str, module: str) -> bool:
    return module.startswith(package + ".")


def test_the_package_has_no_import_cycle():
    known = modules()
    graph = imports(known)
    # a package's __init__ re-exporting its own modules is not a cycle with them
    graph = {m: {t: v for t, v in edges.items() if not (_is_ancestor(m, t) or _is_ancestor(t, m))}
             for m, edges in graph.items()}
    assert cycles(graph) == [], "import cycles (imports inside functions count)"


def test_no_module_uses_another_module_s_underscore_names():
    known = modules()
    offences = []
    for module, edges in imports(known).items():
        for target, uses in edges.items():
            for line, name in uses:
                if name.startswith("_") and not name.startswith("__"):
                    offences.append(f"{known[module].relative_to(PACKAGE.parent)}:{line} uses {target}.{name}")
    assert offences == []


def test_no_module_is_over_800_lines():
    long = {str(p.relative_to(PACKAGE.parent)): n for p in modules().values()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_the_checks_see_a_cycle_and_a_private_import(tmp_path):
    # the checks themselves can fail: a two-module cycle through a function-level import, and a private name
    graph = {"trackpose.a": {"trackpose.b": [(1, "")]}, "trackpose.b": {"trackpose.a": [(3, "_helper")]}}
    assert cycles(graph) == [["trackpose.a", "trackpose.b"]]
