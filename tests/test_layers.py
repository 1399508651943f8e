"""The package's architecture, read from its own source: no import cycles, no module importing one
of a higher layer or one that does not exist (imports inside functions count too), and every
subpackage in the wheel.

Layers, bottom to top; a module may import its own layer and those below it:

    base         errors, atomic, languages, arguments, dims, mel, threads, result, golden.tolerances
    formats      formats.*  (model files: read, write, convert, resolve names)
    audio        inputs, audio, progress, writers
    network      kernels, startup, ops, model, tokenizer, devices, backend, paddle_backend
    decoding     decoding, transcription
    facades      pipeline, batch, cluster, golden.files, golden.contract, golden.check, golden.reference
    commands     cli, __main__, serve.*, golden.cli, golden.__main__, golden.examples.*
    package      numwhisper (its ``__init__`` names the public API, imported on first use)
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "numwhisper"

LAYERS = (
    ("base", ("errors", "atomic", "languages", "arguments", "dims", "mel", "threads", "result", "golden.tolerances")),
    ("formats", ("formats.*",)),
    ("audio", ("inputs", "audio", "progress", "writers")),
    ("network", ("kernels", "startup", "ops", "model", "tokenizer", "devices", "backend", "paddle_backend")),
    ("decoding", ("decoding", "timing", "transcription_openai", "transcription")),
    ("facades", ("pipeline", "batch", "cluster",
                 "golden.files", "golden.openai_files", "golden.contract", "golden.check", "golden.reference")),
    ("commands", ("cli", "__main__", "serve.*", "golden.cli", "golden.__main__", "golden.examples.*")),
    ("package", ("",)),
)


def module_names() -> dict:
    """{dotted name inside the package ("" for the package itself): source file} of every module."""
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def layer_of(name: str) -> int:
    """The index in LAYERS of a module (subpackage ``__init__`` files sit with their modules)."""
    for index, (_, patterns) in enumerate(LAYERS):
        for pattern in patterns:
            if name == pattern or (pattern.endswith(".*") and (name + ".").startswith(pattern[:-1])):
                return index
    raise AssertionError(f"numwhisper.{name} is in no layer: add it to LAYERS in {Path(__file__).name}")


def imports_of(name: str, path: Path, modules: dict) -> set:
    """The package modules that module ``name`` imports anywhere in its source."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if name else []
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_package else here[:-1]
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                module = ".".join(["numwhisper", *base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
        for target in targets:
            if target != "numwhisper" and not target.startswith("numwhisper."):
                continue
            inner = target[len("numwhisper."):] if target != "numwhisper" else ""
            while inner and inner not in modules:
                inner = inner.rpartition(".")[0]
            if inner != name and inner in modules and not name.startswith(inner + ".") and inner != "":
                found.add(inner)
    return found


def missing_imports(path: Path, modules: dict, place: Path = None) -> list:
    """(line, "numwhisper.X") of every ``from X import ...`` in ``path`` whose X lies inside numwhisper
    but is no module there; relative imports are read as if the file stood at ``place`` (default: path)."""
    place = place or path
    name = ".".join(place.relative_to(PACKAGE).with_suffix("").parts)
    here = name.split(".")[:-1] if place.name == "__init__.py" else name.split(".")
    missing = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = here[:len(here) - node.level]
            target = ".".join([*base, *([node.module] if node.module else [])])
        elif (node.module or "").startswith("numwhisper"):
            target = node.module[len("numwhisper."):] if node.module != "numwhisper" else ""
        else:
            continue
        if target not in modules:
            missing.append((node.lineno, f"numwhisper.{target}"))
    return missing


def import_graph() -> dict:
    """{module: the package modules it imports}."""
    modules = module_names()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict) -> list:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
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

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_every_import_inside_the_package_names_a_module_that_exists():
    """Imports inside functions are not run by importing the package; a stale one must still fail here."""
    modules = module_names()
    found = [f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}"
             for path in modules.values() for line, target in missing_imports(path, modules)]
    assert found == []


def test_no_module_imports_a_higher_layer():
    upward = [f"numwhisper.{name} ({LAYERS[layer_of(name)][0]}) imports numwhisper.{other} "
              f"({LAYERS[layer_of(other)][0]})"
              for name, others in import_graph().items() for other in sorted(others)
              if layer_of(other) > layer_of(name)]
    assert upward == []


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_the_cycle_finder_finds_cycles(graph, expected):
    assert cycles(graph) == expected


def test_the_import_reader_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from .audio import load_audio\n    from .formats import hub\n")
    modules = module_names()
    assert imports_of("cli", source, modules) == {"audio", "formats", "formats.hub"}


def test_the_missing_import_reader_finds_a_stale_relative_import(tmp_path):
    source = tmp_path / "app.py"
    source.write_text("def f():\n    from .kernels import set_num_threads\n    from ..threads import set_num_threads\n")
    found = missing_imports(source, module_names(), place=PACKAGE / "serve" / "app.py")
    assert found == [(2, "numwhisper.serve.kernels")]


def test_pyproject_packages_every_subpackage():
    """A subpackage missing from pyproject.toml would be left out of the wheel, and only an installed
    numwhisper would fail."""
    import tomllib

    config = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {".".join(("numwhisper", *path.parent.relative_to(PACKAGE).parts))
                for path in PACKAGE.rglob("__init__.py")}
    assert set(config["tool"]["setuptools"]["packages"]) == packages
