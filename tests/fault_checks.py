"""What tests/test_faults.py finds on disk after a killed or starved `gedge` run: every artifact under a final
name is read back with gedge's own readers, and each finding is classed.

* ``incomplete``: the file itself does not read (truncated, half-written): must never happen;
* ``mixed``: the file is whole, but it and its sidecar (or the parts of a multi-file artifact) come from
  different runs, which the recorded sha256 shows; ``detected`` says whether gedge's reader refuses it on
  load (an undetected mixed set is a finding for the reader's owner);
* ``leftover``: a hidden temporary file left by the killed writer (harmless; the next write uses a new name).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import openvino as ov
import torch
from gedge.calibrate.patches import load_calibration_set
from gedge.core import artifacts
from gedge.core.artifacts.calibration import parse_cache
from gedge.core.artifacts.engine import manifest_path
from gedge.core.artifacts.graph import graph_facts, load_graph
from gedge.core.artifacts.manifest import EngineManifest
from gedge.core.artifacts.records import read_json
from gedge.core.errors import CheckFailed, GedgeError
from gedge.reference.checkpoint import load_checkpoint


@dataclass
class Findings:
    incomplete: list[str] = field(default_factory=list)
    mixed_detected: list[str] = field(default_factory=list)
    mixed_undetected: list[str] = field(default_factory=list)
    leftovers: set[str] = field(default_factory=set)
    whole: int = 0  # artifacts that read back whole and consistent

    def add(self, other: Findings) -> None:
        self.incomplete += other.incomplete
        self.mixed_detected += other.mixed_detected
        self.mixed_undetected += other.mixed_undetected
        self.leftovers |= other.leftovers
        self.whole += other.whole


def _final(folder: Path, pattern: str) -> list[Path]:
    """Files under final names (not the hidden temporary files of a killed writer)."""
    return sorted(p for p in folder.glob(pattern) if not p.name.startswith("."))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _json(path: Path, found: Findings) -> dict | None:
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        found.incomplete.append(f"{path.name}: {exc}")
        return None


def _detected(found: Findings, what: str, reader) -> None:
    """A mixed set: does gedge's ``reader`` refuse it?"""
    try:
        reader()
    except (GedgeError, CheckFailed):  # an error, or a refusal of the artifact's recorded verdicts
        found.mixed_detected.append(what)
        return
    found.mixed_undetected.append(what)


def _unverified(path: Path) -> None:
    """What gedge's reader makes of an artifact without its sidecar: an error where it refuses it, and an error here
    too where it reads it but says its hashes could not be checked (an FP32 graph is usable without a sidecar)."""
    verification = artifacts.open(path).verified()
    if verification is not None and any("not checked" in c for c in verification.checked):
        raise GedgeError("the reader says its sha256 was not checked", path)


def check_checkpoint(folder: Path, found: Findings) -> None:
    model = folder / "model.pt"
    if model.exists():
        try:
            load_checkpoint(model)
            found.whole += 1
        except GedgeError as exc:
            found.incomplete.append(str(exc))
    state = folder / "model.pt.state"
    if state.exists():
        try:
            payload = torch.load(state, map_location="cpu", weights_only=False)
            assert isinstance(payload, dict) and "step" in payload
            found.whole += 1
        except Exception as exc:
            found.incomplete.append(f"{state.name}: {exc.__class__.__name__}: {exc}")


def check_graph(graph: Path, found: Findings) -> None:
    """An ONNX graph and its sidecar (``<graph>.json`` with the graph's sha256)."""
    side = graph.with_name(graph.name + ".json")
    if graph.exists():
        try:
            graph_facts(load_graph(graph), graph)
        except GedgeError as exc:
            found.incomplete.append(str(exc))
            return
    if not side.exists():
        if graph.exists():
            _detected(found, f"{graph.name} without its sidecar", lambda: _unverified(graph))
        return
    payload = _json(side, found)
    if payload is None:
        return
    if not graph.exists():
        found.mixed_detected.append(f"{side.name} without its graph")  # nothing to load
    elif payload.get("graph_sha256") != sha256(graph):
        _detected(found, f"{graph.name} with another run's sidecar", lambda: artifacts.open(graph))
    else:
        found.whole += 1


def check_calibration(folder: Path, found: Findings) -> None:
    """calibration.npz and its sidecar, the Q/DQ graphs, the calibration cache and its sidecar."""
    npz = folder / "calibration.npz"
    if npz.exists():
        try:
            with np.load(npz, allow_pickle=False) as data:
                patches = data["patches"]
        except Exception as exc:
            found.incomplete.append(f"{npz.name}: {exc.__class__.__name__}: {exc}")
        else:
            side = folder / "calibration.npz.json"
            payload = _json(side, found) if side.exists() else {}
            if payload is not None and payload.get("sha256") == hashlib.sha256(patches.tobytes()).hexdigest():
                load_calibration_set(npz)
                found.whole += 1
            elif payload is not None:
                _detected(found, "calibration.npz with another run's sidecar (or none)",
                          lambda: load_calibration_set(npz))
    for graph in _final(folder, "*.int8.*.onnx"):
        check_graph(graph, found)
    for cache in _final(folder, "*.calib.cache"):
        try:
            parse_cache(cache.read_text(), cache)
        except GedgeError as exc:
            found.incomplete.append(str(exc))
            continue
        side = cache.with_name(cache.name + ".json")
        payload = _json(side, found) if side.exists() else {}
        if payload is not None and payload.get("sha256") == sha256(cache):
            found.whole += 1
        elif payload is not None:  # the cache reader checks it against its sidecar; without one a build refuses it
            _detected(found, f"{cache.name} with another run's sidecar (or none)",
                      lambda c=cache: artifacts.open(c).verified())


def check_ir(folder: Path, found: Findings) -> None:
    """An OpenVINO IR: .xml, .bin and the sidecar with the sha256 of both."""
    for xml in _final(folder, "*.xml"):
        weights, side = xml.with_suffix(".bin"), xml.with_name(xml.name + ".json")
        try:
            ov.Core().read_model(str(xml), str(weights))
        except Exception as exc:
            found.incomplete.append(f"{xml.name}: OpenVINO cannot read it: {str(exc).splitlines()[0][:120]}")
            continue
        payload = _json(side, found) if side.exists() else {}
        if payload is None:
            continue
        if payload.get("graph_sha256") == sha256(xml) and payload.get("weights_sha256") == sha256(weights):
            artifacts.open(xml)
            found.whole += 1
        else:
            _detected(found, f"{xml.name}: .xml, .bin and sidecar from different runs", lambda x=xml: artifacts.open(x))


def check_engine(folder: Path, found: Findings) -> None:
    for engine in _final(folder, "*.engine"):
        manifest = manifest_path(engine)
        if manifest.exists():
            try:
                EngineManifest.from_dict(read_json(manifest, "manifest"), manifest)
            except GedgeError as exc:
                found.incomplete.append(str(exc))
                continue
        try:
            artifacts.open(engine)
            found.whole += 1
        except GedgeError:  # the engine and its manifest differ: a mixed set, refused on load
            found.mixed_detected.append(f"{engine.name} with another build's manifest (or none)")


def check_folder(folder: Path, checker) -> Findings:
    found = Findings()
    if folder.exists():
        checker(folder, found)
        found.leftovers = {p.name for p in folder.iterdir() if p.name.startswith(".")}
    return found


def ir_reader_verifies(xml: Path, scratch: Path) -> bool:
    """Whether gedge's IR reader refuses an IR whose .bin is not the one its sidecar records (a copy of a whole
    IR with one weight byte changed)."""
    scratch.mkdir(parents=True, exist_ok=True)
    copy = scratch / xml.name
    for source, target in ((xml, copy), (xml.with_suffix(".bin"), copy.with_suffix(".bin")),
                           (xml.with_name(xml.name + ".json"), copy.with_name(copy.name + ".json"))):
        target.write_bytes(source.read_bytes())
    weights = bytearray(copy.with_suffix(".bin").read_bytes())
    weights[len(weights) // 2] ^= 0xFF
    copy.with_suffix(".bin").write_bytes(bytes(weights))
    try:
        artifacts.open(copy)
    except GedgeError:
        return True
    return False
