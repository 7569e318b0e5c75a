"""Check gedge's import-linter contracts (pyproject.toml, [tool.importlinter]).

The distribution maps four folders into one package (``edge/`` is ``gedge``, ``export/`` is ``gedge.export``, and
so on: [tool.setuptools] package-dir), which import-linter cannot follow: it scans the root package's folder only.
So the package is first assembled as it would be installed, as a tree of symbolic links in a temporary folder,
and import-linter runs on that tree. ``python tests/layers.py`` prints import-linter's report and exits non-zero
when a contract is broken (``make lint`` runs it; so does ``tests/test_architecture.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]


def package_dirs(repo: Path = REPO) -> dict[str, Path]:
    """Package name -> source folder, from pyproject's package-dir mapping."""
    config = tomllib.loads((repo / "pyproject.toml").read_text())
    mapping = config["tool"]["setuptools"]["package-dir"]
    return {name: repo / folder for name, folder in mapping.items()}


def assemble(target: Path, repo: Path = REPO) -> Path:
    """The package as installed, under ``target``: real folders, each source file a symbolic link (so a test can
    add a module to the copy without touching the sources); returns the folder to put on sys.path."""
    for name, folder in package_dirs(repo).items():
        where = target.joinpath(*name.split("."))
        for source in folder.rglob("*.py"):
            relative = source.relative_to(folder)
            if "__pycache__" in relative.parts:
                continue
            link = where / relative
            if link.exists():
                continue
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(source)
    return target


def lint(repo: Path = REPO, assembled: Path | None = None) -> subprocess.CompletedProcess:
    """Run import-linter on the assembled package; returns the finished process (exit code, report)."""
    with tempfile.TemporaryDirectory(prefix="gedge-layers-") as tmp:
        root = assembled or assemble(Path(tmp), repo)
        env = {**os.environ, "PYTHONPATH": str(root)}
        command = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                   "sys.exit(lint_imports_command())", "--config", str(repo / "pyproject.toml"), "--no-cache"]
        return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp)


if __name__ == "__main__":
    result = lint()
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    sys.exit(result.returncode)
