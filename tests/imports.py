"""The project files a module runs, found from its import statements: what a DVC stage's code
`deps` must list (file by file, never whole packages)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("soccerpredict", "ray_jobs", "serve_app")


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The project file of a dotted module name, or None for a module from outside."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _walk(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except what runs only under the type checker."""
    for child in ast.iter_child_nodes(tree):
        if _type_checking_only(child):
            continue
        yield child
        yield from _walk(child)


def imported_names(path: Path, root: Path = ROOT) -> set[str]:
    """Dotted names a file imports, function-level imports included (they run too)."""
    this = _module_name(path, root)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    names: set[str] = set()
    for node in _walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return names


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def has_code(path: Path) -> bool:
    """False for a file that holds nothing but a docstring (an empty package marker)."""
    body = ast.parse(path.read_text()).body
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)


def import_closure(module: str, root: Path = ROOT) -> set[Path]:
    """Every project file `python -m <module>` may run, relative to `root`."""
    start = module_file(module, root)
    assert start is not None, f"{module} is no project module"
    seen, todo = {start}, [start]
    while todo:
        for name in imported_names(todo.pop(), root):
            for parent in _with_parents(name):
                found = module_file(parent, root)
                if found is not None and found not in seen:
                    seen.add(found)
                    todo.append(found)
    return {p.relative_to(root) for p in seen if has_code(p)}
