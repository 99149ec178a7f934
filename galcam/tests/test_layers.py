"""galcam's layers hold (design notes, section 2), read from the source with `ast`.

Every module of galcam is parsed (nothing is imported), and the galcam-internal imports
(module-level and inside functions, relative and absolute, and the lazy re-exports of the
packages' ``__init__``) make a graph. The tests fail, naming file and line, on

(a) an import cycle between modules at module level;
(b) an import from a higher layer, per `LAYERS` below (tests may import any layer);
(c) a private name (``_x``, not a dunder) or a private module imported across package
    borders; tests may import the private names of their own package only;
(d) ``import galcam`` (or one of its torch-free packages) importing torch, checked in a
    fresh interpreter.

Each check is itself tested on a small synthetic graph, so that it can fail.
"""

import ast
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # .../galcam

#: The layers, bottom up; a module may import from its own unit and from lower layers only.
#: A unit is a subpackage or a top-level module of galcam. This mirrors section 2 of the
#: design notes, where ``preprocessing/ io/ datasets/`` share one line: inside it
#: preprocessing reads images with io, and datasets encodes images with preprocessing, so
#: the line is ordered io < preprocessing < datasets. The baseline (classical finder) sits
#: beside the catalogue and the evaluation: it uses io, preprocessing, datasets and the
#: morphology helpers, and only the CLI uses it.
LAYERS = (
    # Shared helpers: they import no other galcam module (numpy/astropy/matplotlib only),
    # so that every layer may use them. ``_validation`` checks options, ``_lazy`` makes the
    # packages' lazy names, ``morphology`` measures shapes, ``visualization`` draws images.
    ("galcam._version", "galcam._lazy", "galcam._validation", "galcam.data",
     "galcam.morphology", "galcam.visualization"),
    ("galcam.io",),
    ("galcam.preprocessing",),
    ("galcam.datasets",),
    ("galcam.catalog", "galcam.evaluation", "galcam.baseline"),
    ("galcam.models",),
    ("galcam.inference", "galcam.training"),
    ("galcam.survey",),
    ("galcam.cli",),
    # the package itself: lazy re-exports of names from every layer
    ("galcam",),
)

#: Imports from a higher (or the same) layer that are known and being removed:
#: (importing module, imported unit) -> where. Delete an entry once its import is gone
#: (`test_known_layer_exceptions_still_exist` reminds you).
KNOWN_LAYER_EXCEPTIONS = {
    # WeakSegmenter.train imports galcam.training inside the method (inference and training
    # share a layer); it is being removed.
    ("galcam.inference.segmenter", "galcam.training"): "WeakSegmenter.train",
}

#: Private names that library code imports across package borders and that are being
#: removed: (importing module, imported module, name). Delete an entry once it is gone.
KNOWN_PRIVATE_IMPORTS = frozenset()

#: Private names that tests import across package borders today: (test module, imported
#: module, name). New ones fail; remove an entry when its test stops doing it.
KNOWN_TEST_PRIVATE_IMPORTS = frozenset()

#: Packages that must import without torch (design notes, section 2; the lazy packages
#: galcam.inference and galcam.survey promise it in their docstrings).
TORCH_FREE = ("galcam", "galcam.catalog", "galcam.evaluation", "galcam.io",
              "galcam.preprocessing", "galcam.datasets", "galcam.baseline",
              "galcam.inference", "galcam.survey")

Import = namedtuple("Import", "source target names path lineno module_level lazy")
Import.__doc__ = """One galcam-internal import: ``source`` module imports ``target`` module.

``names`` are the names taken from ``target`` (empty for ``import target``),
``module_level`` is False inside a function, ``lazy`` marks a lazy re-export."""


# ----------------------------------------------------------------------------- the graph
def module_name(path, root=PACKAGE_DIR):
    """Dotted name of a source file under ``root`` (the galcam folder)."""
    rel = Path(path).relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def read_sources(root=PACKAGE_DIR):
    """``{module: (path, source, is_package)}`` of every .py file of galcam."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        out[module_name(path, root)] = (path, path.read_text(encoding="utf-8"),
                                        path.name == "__init__.py")
    return out


def _lazy_targets(tree, package):
    """Modules named by ``lazy_exports(__name__, MAPPING[, relative=False])`` in a package."""
    dicts = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Dict)):
            dicts[node.targets[0].id] = node.value
    out = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", "").endswith(
                "lazy_exports") and len(node.args) >= 2 and isinstance(node.args[1], ast.Name)):
            continue
        relative = not any(k.arg == "relative" and isinstance(k.value, ast.Constant)
                           and k.value.value is False for k in node.keywords)
        mapping = dicts.get(node.args[1].id)
        if mapping is None:
            continue
        for key, value in zip(mapping.keys, mapping.values):
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                target = f"{package}.{value.value}" if relative else value.value
                out.append((target, key.value, node.lineno))
    return out


def _function_nodes(tree):
    """ids of the nodes inside a function (imports there run only when it is called)."""
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for sub in ast.walk(node):
                if sub is not node:
                    inside.add(id(sub))
    return inside


def build_imports(sources, top="galcam"):
    """The galcam-internal imports of ``sources`` (as returned by `read_sources`)."""
    modules = set(sources)
    imports = []
    for name, (path, text, is_package) in sources.items():
        tree = ast.parse(text, filename=str(path))
        package = name if is_package else name.rpartition(".")[0]
        in_function = _function_nodes(tree)
        for node in ast.walk(tree):
            level = id(node) not in in_function
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == top:
                        imports.append(Import(name, alias.name, (), path, node.lineno, level,
                                              False))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != top:
                    continue
                plain = []
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in modules:  # ``from package import submodule``
                        imports.append(Import(name, sub, (), path, node.lineno, level, False))
                    else:
                        plain.append(alias.name)
                if plain:
                    imports.append(Import(name, target, tuple(plain), path, node.lineno, level,
                                          False))
        if is_package:
            for target, public, lineno in _lazy_targets(tree, name):
                imports.append(Import(name, target, (public,), path, lineno, False, True))
    return imports


def is_test(module):
    parts = module.split(".")
    return "tests" in parts or parts[-1] == "conftest"


def unit_of(module, layers=LAYERS):
    """The unit (layer entry) a module belongs to, or None.

    The top package (``galcam``) is a unit of its own ``__init__`` only: a new subpackage
    or module must be placed in `LAYERS`.
    """
    best = None
    for units in layers:
        for unit in units:
            inside = module == unit or ("." in unit and module.startswith(unit + "."))
            if inside and (best is None or len(unit) > len(best)):
                best = unit
    return best


def _ranks(layers):
    return {unit: rank for rank, units in enumerate(layers) for unit in units}


def _where(imp, root=PACKAGE_DIR):
    try:
        path = Path(imp.path).relative_to(root.parent)
    except ValueError:
        path = imp.path
    return f"{path}:{imp.lineno}"


def _effective_target(imp):
    """The module an import depends on; None for ``from galcam import __version__``.

    The dunders of the top package (its version) come from a package that is always
    imported first, as the parent of every module: that is no dependency on a layer.
    """
    if "." not in imp.target and imp.names and all(
            n.startswith("__") and n.endswith("__") for n in imp.names):
        return None
    return imp.target


# ----------------------------------------------------------------------------- the checks
def find_cycles(imports):
    """Import cycles at module level, each as a list of ``"module (file:line)"`` steps.

    Importing ``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b``; those edges are
    part of the graph, except towards the importing module's own packages.
    """
    graph = {}
    for imp in imports:
        if not imp.module_level or imp.lazy or is_test(imp.source):
            continue
        target = _effective_target(imp)
        if target is None:
            continue
        parts = target.split(".")
        for k in range(1, len(parts) + 1):
            node = ".".join(parts[:k])
            if imp.source == node or imp.source.startswith(node + "."):
                continue  # the importer's own package: already being imported
            graph.setdefault(imp.source, {}).setdefault(node, imp)
    # Tarjan's strongly connected components
    index, low, on_stack, stack, sccs = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1 or v in graph.get(v, {}):
                sccs.append(scc)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    cycles = []
    for scc in sccs:
        members = set(scc)
        start = min(scc)
        # a shortest way back to start, inside the component
        paths = {start: [start]}
        queue = [start]
        cycle = None
        while queue and cycle is None:
            v = queue.pop(0)
            for w in sorted(graph.get(v, {})):
                if w == start:
                    cycle = paths[v] + [start]
                    break
                if w in members and w not in paths:
                    paths[w] = paths[v] + [w]
                    queue.append(w)
        steps = [f"{a} ({_where(graph[a][b])})" for a, b in zip(cycle, cycle[1:])]
        cycles.append(steps + [cycle[-1]])
    return cycles


def layer_violations(imports, layers=LAYERS, exceptions=KNOWN_LAYER_EXCEPTIONS):
    """Imports of non-test code from a higher or equal layer (another unit), as messages."""
    ranks = _ranks(layers)
    out = []
    for imp in imports:
        if is_test(imp.source):
            continue
        target = _effective_target(imp)
        if target is None:
            continue
        src, dst = unit_of(imp.source, layers), unit_of(target, layers)
        if src is None or dst is None:
            missing = imp.source if src is None else target
            out.append(f"{_where(imp)}: {missing} is in no layer (add it to LAYERS)")
            continue
        if src == dst or ranks[dst] < ranks[src]:
            continue
        if (imp.source, dst) in exceptions:
            continue
        kind = "lazily " if imp.lazy else ("" if imp.module_level else "inside a function ")
        relation = "same layer" if ranks[dst] == ranks[src] else "a higher layer"
        out.append(f"{_where(imp)}: {imp.source} ({src}) {kind}imports {target} "
                   f"({dst}, {relation})")
    return out


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_crossings(imports, layers=LAYERS, *, tests=False):
    """Private names or modules imported across units, as ``(message, key)`` pairs.

    ``tests=False`` checks library code, ``tests=True`` the tests (a test belongs to the
    unit of the package it tests; the root ``galcam/tests`` belongs to the top package).
    A unit's own name may be private (``galcam._validation`` is shared by every unit);
    the names and modules inside it may not.
    """
    out = []
    for imp in imports:
        if imp.lazy or is_test(imp.source) != tests:
            continue
        source = imp.source
        if tests:
            parts = source.split(".")
            source = ".".join(parts[:parts.index("tests")]) if "tests" in parts else source
        src, dst = unit_of(source, layers), unit_of(imp.target, layers)
        if dst is None or src == dst:
            continue
        below = imp.target[len(dst):].split(".")[1:]
        bad_modules = [p for p in below if _private(p)]
        bad_names = [n for n in imp.names if _private(n)]
        for bad in bad_modules[:1] + bad_names:
            what = "module" if bad in bad_modules else "name"
            out.append((f"{_where(imp)}: {imp.source} imports the private {what} {bad!r} of "
                        f"{imp.target}", (imp.source, imp.target, bad)))
    return out


def torch_after_import(module, cwd=PACKAGE_DIR.parent):
    """Import ``module`` in a fresh interpreter: (whether torch got imported, error text)."""
    code = f"import sys, {module}; print('torch' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=cwd, timeout=300)
    if run.returncode:
        return None, run.stderr.strip()[-2000:]
    return run.stdout.strip().splitlines()[-1] == "True", ""


# ----------------------------------------------------------------------------- the tests
@pytest.fixture(scope="module")
def imports():
    return build_imports(read_sources())


def test_every_module_is_in_a_layer(imports):
    names = set(read_sources())
    unplaced = sorted(m for m in names if not is_test(m) and unit_of(m) is None)
    assert not unplaced, f"modules in no layer of LAYERS: {unplaced}"


def test_no_import_cycles(imports):
    cycles = find_cycles(imports)
    assert not cycles, "import cycles at module level:\n" + "\n".join(
        "  " + " -> ".join(c) for c in cycles)


def test_layers_hold(imports):
    bad = layer_violations(imports)
    assert not bad, "imports against the layers (design notes, section 2):\n" + "\n".join(
        "  " + b for b in bad)


def test_known_layer_exceptions_still_exist(imports):
    found = {(i.source, unit_of(i.target)) for i in imports}
    stale = sorted(set(KNOWN_LAYER_EXCEPTIONS) - found)
    assert not stale, f"KNOWN_LAYER_EXCEPTIONS lists imports that are gone: {stale}"


def test_no_private_names_across_packages(imports):
    bad = [(m, key) for m, key in private_crossings(imports) if key not in KNOWN_PRIVATE_IMPORTS]
    assert not bad, "private names imported across packages:\n" + "\n".join(
        "  " + m for m, _ in bad)


def test_tests_import_private_names_of_their_own_package_only(imports):
    bad = [m for m, key in private_crossings(imports, tests=True)
           if key not in KNOWN_TEST_PRIVATE_IMPORTS]
    assert not bad, "tests importing private names of another package:\n" + "\n".join(
        "  " + m for m in bad)


@pytest.mark.parametrize("module", TORCH_FREE)
def test_import_does_not_load_torch(module):
    loaded, error = torch_after_import(module)
    assert not error, f"import {module} failed: {error}"
    assert not loaded, f"import {module} imports torch"


# ----------------------------------------------------------------------------- the checkers
SYNTHETIC_LAYERS = (("pkg._util", "pkg._lazy"), ("pkg.low",), ("pkg.mid_a", "pkg.mid_b"),
                    ("pkg.high",), ("pkg",))


def _synthetic(files):
    """``{module: (path, source, is_package)}`` from ``{relative path: source}``."""
    root = PACKAGE_DIR.parent / "pkg"  # not on disk: only for the names and messages
    out = {}
    for rel, text in files.items():
        path = root / rel
        out[module_name(path, root)] = (path, text, path.name == "__init__.py")
    return out


SYNTHETIC = {
    "__init__.py": "from ._lazy import lazy_exports\n"
                   "_LAZY = {'Tool': 'pkg.high.tool'}\n"
                   "__getattr__, __dir__ = lazy_exports(__name__, _LAZY, relative=False)\n",
    "_util.py": "",
    "_lazy.py": "",
    "low/__init__.py": "from .core import thing\n",
    "low/core.py": "from pkg._util import helper\nfrom ._inner import _x\n",
    "low/_inner.py": "",
    "mid_a/__init__.py": "",
    "mid_a/a.py": "from ..low import core\n\ndef f():\n    from pkg.mid_b import b\n",
    "mid_b/__init__.py": "",
    "mid_b/b.py": "import pkg.low.core\nfrom pkg.low.core import _private\n",
    "high/__init__.py": "",
    "high/tool.py": "from pkg.mid_a import a\nfrom pkg import __version__\n",
    "high/tests/__init__.py": "",
    "high/tests/test_tool.py": "from pkg.high.tool import _ok\nfrom pkg.low._inner import y\n",
}


def test_build_imports_resolves_relative_function_level_and_lazy():
    imps = build_imports(_synthetic(SYNTHETIC), top="pkg")
    edges = {(i.source, i.target, i.names, i.module_level, i.lazy) for i in imps}
    assert ("pkg.mid_a.a", "pkg.low.core", (), True, False) in edges  # from ..low import core
    assert ("pkg.mid_a.a", "pkg.mid_b.b", (), False, False) in edges  # inside a function
    assert ("pkg.low", "pkg.low.core", (), True, False) not in edges  # ``thing`` is a name
    assert ("pkg.low", "pkg.low.core", ("thing",), True, False) in edges
    assert ("pkg", "pkg.high.tool", ("Tool",), False, True) in edges  # lazy re-export
    assert ("pkg.mid_b.b", "pkg.low.core", (), True, False) in edges  # import pkg.low.core


def test_find_cycles_finds_a_cycle_and_only_at_module_level():
    files = dict(SYNTHETIC)
    assert find_cycles(build_imports(_synthetic(files), top="pkg")) == []
    files["low/core.py"] += "from pkg.mid_a.a import g\n"  # low.core <-> mid_a.a
    cycles = find_cycles(build_imports(_synthetic(files), top="pkg"))
    assert len(cycles) == 1
    # low.core -> mid_a.a -> (the package pkg.low, run by importing pkg.low.core) -> back
    assert cycles[0] == ["pkg.low (pkg/low/__init__.py:1)", "pkg.low.core (pkg/low/core.py:3)",
                         "pkg.mid_a.a (pkg/mid_a/a.py:1)", "pkg.low"]
    # the same import inside a function is no cycle
    files["low/core.py"] = "def g():\n    from pkg.mid_a.a import g\n"
    assert find_cycles(build_imports(_synthetic(files), top="pkg")) == []
    # a cycle through a package's __init__
    files["low/__init__.py"] = "from .core import thing\nfrom pkg.mid_a import a\n"
    cycles = find_cycles(build_imports(_synthetic(files), top="pkg"))
    assert cycles and "pkg.low (pkg/low/__init__.py:2)" in " -> ".join(cycles[0])


def test_layer_violations_flags_higher_and_same_layer_imports():
    imps = build_imports(_synthetic(SYNTHETIC), top="pkg")
    bad = layer_violations(imps, SYNTHETIC_LAYERS, {})
    # mid_a.a imports mid_b inside a function: same layer; nothing else is wrong (the
    # tests of high may import anything, __version__ of the package is allowed)
    assert len(bad) == 1 and "pkg/mid_a/a.py:4" in bad[0] and "same layer" in bad[0]
    assert layer_violations(imps, SYNTHETIC_LAYERS,
                            {("pkg.mid_a.a", "pkg.mid_b"): "known"}) == []
    files = dict(SYNTHETIC, **{"low/core.py": "from pkg.high import tool\n"})
    bad = layer_violations(build_imports(_synthetic(files), top="pkg"), SYNTHETIC_LAYERS, {})
    assert any("pkg/low/core.py:1" in b and "a higher layer" in b for b in bad)
    files = dict(SYNTHETIC, **{"extra.py": ""})
    bad = layer_violations(build_imports(_synthetic(dict(files, **{
        "high/tool.py": "import pkg.extra\n"})), top="pkg"), SYNTHETIC_LAYERS, {})
    assert any("pkg.extra is in no layer" in b for b in bad)


def test_private_crossings_flags_names_and_modules_across_units():
    imps = build_imports(_synthetic(SYNTHETIC), top="pkg")
    lib = private_crossings(imps, SYNTHETIC_LAYERS)
    # low.core takes _x from its own package (fine) and a helper from pkg._util (fine);
    # mid_b.b takes low.core's _private: a crossing
    assert [key for _, key in lib] == [("pkg.mid_b.b", "pkg.low.core", "_private")]
    assert "pkg/mid_b/b.py:2" in lib[0][0]
    tests = private_crossings(imps, SYNTHETIC_LAYERS, tests=True)
    # high's test may take high.tool's _ok, not the private module low._inner
    assert [key for _, key in tests] == [("pkg.high.tests.test_tool", "pkg.low._inner",
                                          "_inner")]


def test_torch_check_can_fail(tmp_path):
    (tmp_path / "torch.py").write_text("")  # a stand-in: the real one is slow to import
    (tmp_path / "needs_torch.py").write_text("import torch\n")
    (tmp_path / "no_torch.py").write_text("import json\n")
    assert torch_after_import("needs_torch", cwd=tmp_path) == (True, "")
    assert torch_after_import("no_torch", cwd=tmp_path) == (False, "")
    loaded, error = torch_after_import("missing_module", cwd=tmp_path)
    assert loaded is None and "missing_module" in error
