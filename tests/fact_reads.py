"""Where the facts of manifests and sidecars are read by key name: ``python tests/fact_reads.py`` lists every
``x["<key>"]`` and ``x.get("<key>")`` in gedge's package code that reads a manifest or sidecar dictionary: its key
is a top-level field of an artifact's JSON (docs/schemas: engine manifest, graph, IR and calibration cache
sidecars, calibration set, refitted threshold; and the facts a server gives its clients), and the dictionary is
named like one (``manifest``, ``sidecar``, ``side``, ``facts``, ``served``, ``record``, ``parity``, ``gate``,
``summary`` of an artifact), inside and outside ``gedge.core.artifacts``. Outside it there must be none
(tests/test_architecture.py): every other module reads typed facts from an ``Artifact``.

The key test alone also finds dictionaries that are no artifact's (a command's own summary, a benchmark's
skipped rows, a build plan's profile); ``--all`` lists those too.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = ("edge", "export", "calibrate", "bench")
ARTIFACTS = REPO / "edge" / "core" / "artifacts"
# The served facts (gedge.core.artifacts.served) have no schema file; their own keys besides the shared ones.
SERVED_KEYS = {"artifact", "artifact_kind", "sha256", "flavour", "backend", "max_batch_size", "verification"}
RECORD_NAMES = re.compile(r"manifest|sidecar|\bside\b|facts|served|record|parity|gate|artifact|summary\(")


def fact_keys() -> set[str]:
    keys = set(SERVED_KEYS)
    for schema in (REPO / "docs" / "schemas").glob("*.schema.json"):
        keys |= set(json.loads(schema.read_text()).get("properties", {}))
    return keys


def _key(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def reads(path: Path, keys: set[str], any_name: bool = False) -> list[tuple[int, str]]:
    """(line, what) of each read by key name of a fact key in one module (of a dictionary named like a manifest or
    sidecar, unless ``any_name``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _key(node.slice) in keys:
            receiver, what = node.value, f"[{_key(node.slice)!r}]"
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
              and node.args and _key(node.args[0]) in keys):
            receiver, what = node.func.value, f".get({_key(node.args[0])!r})"
        else:
            continue
        name = ast.unparse(receiver)
        if any_name or RECORD_NAMES.search(name):
            found.append((node.lineno, f"{name}{what}"))
    return sorted(found)


def all_reads(any_name: bool = False) -> dict[str, list[tuple[int, str]]]:
    keys = fact_keys()
    files = sorted(p for folder in PACKAGE_FOLDERS for p in (REPO / folder).rglob("*.py") if "firmware" not in p.parts)
    return {str(p.relative_to(REPO)): found for p in files if (found := reads(p, keys, any_name))}


def outside_artifacts(found: dict[str, list[tuple[int, str]]]) -> dict[str, list[tuple[int, str]]]:
    inside = str(ARTIFACTS.relative_to(REPO))
    return {path: lines for path, lines in found.items() if not path.startswith(inside)}


if __name__ == "__main__":
    found = all_reads("--all" in sys.argv)
    for path, lines in found.items():
        print(f"{path}: " + ", ".join(f"{line} {what}" for line, what in lines))
    outside = outside_artifacts(found)
    print(f"{sum(len(v) for v in found.values())} reads by key name, "
          f"{sum(len(v) for v in outside.values())} outside gedge.core.artifacts")
    sys.exit(1 if outside else 0)
