"""The package's shape: imports point one way, no circles, a light ``import ganlab``, plugins
that register themselves."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "ganlab"

# lower layers first; a module may import its own layer or a lower one, never a higher one
LAYERS = [
    {"errors", "registry", "paths", "lock"},
    {"config"},
    {"losses", "noise", "init", "models", "metrics", "viz", "tracking", "checkpoint",
     "distributed", "tasks", "data", "conditioning", "hooks"},
    {"tricks"},
    {"players", "inputs", "step", "sampling", "state", "trainer"},
    {"callbacks", "threads", "alarms"},
    {"game"},
    {"run"},
    {"evaluation", "sweep", "compare", "report"},
    {"cli", "__main__", "__init__"},
]
PLUGINS = {"tetris"}  # on top: a plugin may import anything below the command line


def layer_of(top: str) -> int:
    if top in PLUGINS:
        return len(LAYERS) - 1
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"module {top!r} is in no layer of this test; add it")


def imports_of(path: Path) -> list[tuple[str, int, bool]]:
    """(imported ganlab module's top-level name, line, inside a function?) of one file."""
    rel = path.relative_to(SRC.parent).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    if rel.name == "__init__":
        package = list(rel.parts[:-1])
    tree = ast.parse(path.read_text())
    out = []
    funcs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    nested = {id(n) for f in funcs for n in ast.walk(f)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                mod = base + (node.module.split(".") if node.module else [])
            else:
                mod = (node.module or "").split(".")
            names = [mod] if node.module or len(mod) > 1 else []
            if not node.module:  # from . import a, b
                names = [mod + [a.name] for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names]
        else:
            continue
        for m in names:
            if m and m[0] == "ganlab" and len(m) > 1:
                out.append((m[1], node.lineno, id(node) in nested))
    return out


def test_imports_point_one_way():
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        top = rel.parts[0].removesuffix(".py")
        for target, line, _ in imports_of(path):
            if target == top:
                continue
            if layer_of(target) > layer_of(top):
                wrong.append(f"{rel}:{line} imports ganlab.{target}")
    assert not wrong, "imports that point up a layer:\n" + "\n".join(wrong)


def test_no_function_local_imports_of_ganlab_modules():
    """Circles are not held apart by imports hidden in functions."""
    hidden = [f"{path.relative_to(SRC)}:{line} imports ganlab.{target}"
              for path in sorted(SRC.rglob("*.py"))
              for target, line, local in imports_of(path) if local]
    assert not hidden, "\n".join(hidden)


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\n"
                          "print('\\n'.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize("module", ["ganlab", "ganlab.config", "ganlab.registry"])
def test_light_imports_load_no_torch(module):
    loaded = _modules_after(f"import {module}")
    assert "torch" not in loaded
    assert not {m for m in loaded if m.startswith("ganlab.tetris")}


def test_plugins_register_on_first_lookup_and_the_core_names_none_of_their_parts():
    loaded = _modules_after("from ganlab.registry import DATASETS\nDATASETS.names()")
    assert "ganlab.tetris" in loaded  # the plugin came in through the registry
    core = [p for p in SRC.rglob("*.py") if p.relative_to(SRC).parts[0] not in PLUGINS]
    mentions = [f"{p.relative_to(SRC)}:{line}" for p in core
                for target, line, _ in imports_of(p) if target in PLUGINS]
    assert not mentions, mentions
    from ganlab.registry import COMMANDS, DATASETS, MODELS
    assert "tetris" in DATASETS and "tetris-emulator" in MODELS and "tetris" in COMMANDS


def test_lazy_exports_resolve():
    import ganlab
    from ganlab.game import Game
    assert ganlab.Game is Game and "Game" in dir(ganlab) or hasattr(ganlab, "Game")
    with pytest.raises(AttributeError, match="no attribute 'Gme'"):
        ganlab.Gme
