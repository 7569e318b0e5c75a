"""The architecture's rules, checked: one-way layers (import-linter), imports at module level, module and
function sizes, and the paths a device runs without torch (docs/architecture.md says why each rule exists)."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fact_reads  # noqa: E402  (tests/fact_reads.py: where manifests' and sidecars' keys are read)
import layers  # noqa: E402  (tests/layers.py: the import-linter run)

REPO = Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = ("edge", "export", "calibrate", "bench")
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80
MAX_PARAMETERS = 6
# The one module that imports inside functions: optional heavy dependencies, named there.
DEFERRED_IMPORTS_AT = {"edge/core/optional.py"}
# The two places that import gedge's own modules by name: the CLI's command table and the backends' registry.
LOADS_BY_NAME_AT = {"edge/cli/app.py", "edge/runtime/registry.py"}


def package_files() -> list[Path]:
    return sorted(p for folder in PACKAGE_FOLDERS for p in (REPO / folder).rglob("*.py")
                  if "firmware" not in p.parts)


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_layers_contract_is_kept():
    result = layers.lint()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout and "KEPT" in result.stdout


def test_a_back_edge_breaks_the_contract(tmp_path):
    """The contract is not vacuous: a core module that imports the runtime (a back edge) fails it."""
    root = layers.assemble(tmp_path / "pkg")
    (root / "gedge" / "core" / "back_edge.py").write_text("from gedge.runtime import registry  # noqa: F401\n")
    result = layers.lint(assembled=root)
    assert result.returncode != 0
    assert "gedge.core.back_edge -> gedge.runtime.registry" in result.stdout


def _function_imports(tree: ast.AST) -> list[int]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found += [inner.lineno for inner in ast.walk(node) if isinstance(inner, (ast.Import, ast.ImportFrom))]
    return sorted(set(found))


def test_imports_are_at_module_level():
    """Imports sit at the top of a module, where import-linter sees them; deferred imports of optional heavy
    dependencies go through gedge.core.optional.require."""
    offenders = []
    for path in package_files():
        if rel(path) in DEFERRED_IMPORTS_AT:
            continue
        lines = _function_imports(ast.parse(path.read_text()))
        if lines:
            offenders.append(f"{rel(path)}: lines {lines}")
    assert not offenders, "imports inside functions:\n" + "\n".join(offenders)


def _loaded_name(node: ast.AST) -> str | None:
    """The module name a ``require``/``load``/``available`` call names, where it is written out (else None)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return str(node.values[0].value)
    return None


def test_modules_are_loaded_by_name_in_two_places():
    """gedge's own modules are imported by name only by the command table and the registry (from their tables),
    and importlib's import_module only in gedge.core.optional: any other lazy import of gedge is an edge nobody
    sees."""
    offenders = []
    for path in package_files():
        where = rel(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if where in DEFERRED_IMPORTS_AT:
                continue
            if isinstance(node, ast.Attribute) and node.attr == "import_module":
                offenders.append(f"{where}:{node.lineno} importlib.import_module")
            if isinstance(node, ast.ImportFrom) and node.module == "importlib" and any(
                    a.name == "import_module" for a in node.names):
                offenders.append(f"{where}:{node.lineno} imports import_module")
            if not (isinstance(node, ast.Call) and node.args):
                continue
            direct = isinstance(node.func, ast.Name)
            called = node.func.id if direct else getattr(node.func, "attr", "")
            if called not in ("require", "load", "available") or (called != "require" and not direct):
                continue
            name = _loaded_name(node.args[0])
            by_variable = name is None and called == "require" and where not in LOADS_BY_NAME_AT
            if (name or "").startswith("gedge") or by_variable:
                offenders.append(f"{where}:{node.lineno} {called}({ast.unparse(node.args[0])})")
    assert not offenders, "gedge modules loaded by name outside the command table and the registry:\n" + "\n".join(
        offenders)


def test_manifest_and_sidecar_facts_are_read_in_core_artifacts_only():
    """No module outside gedge.core.artifacts reads a manifest's or sidecar's facts by key name: they read typed
    facts from the Artifact (`python tests/fact_reads.py` lists where the keys are read)."""
    outside = fact_reads.outside_artifacts(fact_reads.all_reads())
    assert not outside, outside
    inside = fact_reads.all_reads(any_name=True)
    readers = {path for path in inside if path.startswith("edge/core/artifacts/")}
    assert {"edge/core/artifacts/facts.py", "edge/core/artifacts/manifest.py",
            "edge/core/artifacts/sidecar.py"} <= readers  # the scan finds the readers it should


def test_module_sizes():
    long = [f"{rel(p)}: {n} lines" for p in package_files()
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not long, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(long)


def _is_typer_command(node: ast.FunctionDef) -> bool:
    return any(isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr in ("command", "callback")
               for d in node.decorator_list)


def test_function_sizes_and_parameters():
    """No function over 80 lines; no function over 6 parameters, except Typer command signatures, where each
    parameter is one command-line option (they build an options dataclass and call the library)."""
    long, wide = [], []
    for path in package_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            size = node.end_lineno - node.lineno + 1
            if size > MAX_FUNCTION_LINES:
                long.append(f"{rel(path)}:{node.lineno} {node.name}: {size} lines")
            args = node.args
            names = [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs] if a.arg not in ("self", "cls")]
            if len(names) > MAX_PARAMETERS and not _is_typer_command(node):
                wide.append(f"{rel(path)}:{node.lineno} {node.name}: {len(names)} parameters")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)
    assert not wide, f"functions over {MAX_PARAMETERS} parameters:\n" + "\n".join(wide)


TORCH_FREE = ["gedge.core.artifacts", "gedge.core.artifacts.checkpoint", "gedge.cli.app", "gedge.cli.inspection",
              "gedge.cli.build", "gedge.cli.bench", "gedge.cli.served",
              "gedge.runtime.registry", "gedge.runtime.loop", "gedge.runtime.choice", "gedge.runtime.cuda",
              "gedge.runtime.onnxruntime_backend", "gedge.runtime.openvino_backend", "gedge.runtime.tensorrt_backend",
              "gedge.compare.driver", "gedge.compare.parity", "gedge.inspection.session", "gedge.export.engine_build",
              "gedge.export.build_plan", "gedge.export.check", "gedge.export.tensorrt_parse", "gedge.export.fp16",
              "gedge.bench.runner", "gedge.bench.report"]


def test_device_paths_import_without_torch():
    """A Jetson runs `gedge inspect`, `gedge build` and `gedge bench` on engines without torch installed."""
    script = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # an import of torch now fails, as on a device without it
        import importlib
        for name in {TORCH_FREE!r}:
            importlib.import_module(name)
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]


@pytest.mark.parametrize("command", ["inspect", "build", "bench", "check"])
def test_device_commands_show_help_without_torch(command):
    script = (f"import sys; sys.modules['torch'] = None; sys.argv = ['gedge', {command!r}, '--help']; "
              "from gedge.cli.app import main; main()")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0 and "not available" not in result.stdout, result.stdout + result.stderr
