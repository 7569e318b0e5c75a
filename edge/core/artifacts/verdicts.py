"""What an artifact's recorded facts prove when it is read, and the one rule that enforces its recorded verdicts.

Every artifact gedge writes carries the hashes that bind it to its facts and, where a check judged it, the
verdict: an INT8 graph or IR the accuracy gate of ``gedge calibrate`` (``gate`` in its sidecar), an engine the
parity measured at build time (``parity`` in its manifest) and the verdicts overridden when it was built
(``forced``), a TensorRT calibration cache the gate of the Q/DQ graph made from the same ranges and the sha256
of the FP32 graph it belongs to. The functions here read them into a :class:`Verification`:

* a recorded hash that does not match is an :class:`~gedge.core.errors.ArtifactError` (one line that says to
  re-export): the files were replaced, modified or published only in part, and nothing may use them;
* a failed verdict (or an INT8 artifact with no recorded gate) is a refusal: :func:`enforce` raises
  :class:`RefusedArtifact` (exit code 1) naming the verdict, unless the user forces it, and then the forced
  verdicts travel on (an engine's manifest records them as ``forced``);
* a verdict not measured (engine parity "pending", "not measured" or "error") or a verdict overridden earlier
  (``forced``) is a warning the commands print.

The readers call these: :mod:`gedge.runtime.artifacts` (what ``gedge inspect``, ``bench``, ``parity`` and
``serve`` open through the runtime registry, which enforces before any backend is opened), the served-artifact
facts (``gedge serve``, ``gedge triton export``) and ``gedge build`` (the graph and the calibration cache it builds
from). The C++ firmware applies the same rule to an engine's manifest (``edge/firmware/src/compat.cpp``).
No heavy imports: a device checks the facts before it loads any library.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from gedge.core.artifacts.graph import read_sidecar, sidecar_path
from gedge.core.errors import ArtifactError, CheckFailed
from gedge.core.hashing import sha256_file

NOT_MEASURED = ("pending", "not measured", "error")


class RefusedArtifact(CheckFailed):
    """An artifact whose recorded verdict failed (exit code 1: the check ran, when it was made, and failed)."""


@dataclass(frozen=True)
class Verification:
    """What was checked when an artifact was read, the verdicts it records, and what they mean for using it."""

    path: str
    kind: str  # graph, ir, engine, calibration cache
    checked: tuple[str, ...] = ()  # the recorded hashes that were verified (or why none could be)
    verdicts: dict[str, str] = field(default_factory=dict)  # e.g. {"gate": "passed"}, {"engine parity": "pending"}
    refusals: tuple[str, ...] = ()  # failed verdicts: the artifact is refused unless forced
    warnings: tuple[str, ...] = ()  # verdicts not measured, or overridden when the artifact was made
    forced: tuple[str, ...] = ()  # the refusals the user overrode (--force) when reading it now

    @property
    def status(self) -> str:
        """forced, refused, warning or verified."""
        if self.forced:
            return "forced"
        if self.refusals:
            return "refused"
        return "warning" if self.warnings else "verified"

    def line(self) -> str:
        """One line for a command's header, e.g. 'verified: sha256 matches the sidecar; gate passed'."""
        parts = [*self.checked, *(f"{name} {state}" for name, state in self.verdicts.items())]
        parts += [f"FORCED over: {why}" for why in self.forced]
        parts += [why for why in self.refusals if why not in self.forced]
        parts += list(self.warnings)
        return f"{self.status}: " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status, "line": self.line()}


def enforce(verification: Verification, force: bool = False) -> Verification:
    """The verification, or :class:`RefusedArtifact` when a recorded verdict failed and ``force`` is not given.
    Forced, the refusals are kept as ``forced`` (so the next artifact made from this one records them)."""
    if not verification.refusals:
        return verification
    if not force:
        raise RefusedArtifact(f"{verification.refusals[0]}; refused (pass --force to use it anyway)",
                              verification.path)
    return replace(verification, forced=verification.refusals)


def _sha_mismatch(what: str, path: str | Path, redo: str) -> ArtifactError:
    return ArtifactError(f"{what} (sha256 differs: replaced, modified or only partly published?); {redo}", path)


def gate_verdict(payload: dict[str, Any], what: str) -> tuple[dict[str, str], tuple[str, ...]]:
    """({"gate": state}, refusals) of an INT8 artifact's recorded accuracy gate (``payload["gate"]``)."""
    gate = payload.get("gate")
    if not isinstance(gate, dict) or not isinstance(gate.get("passed"), bool):
        return {"gate": "not recorded"}, (f"{what} records no accuracy gate (made by `gedge calibrate`?)",)
    if gate["passed"]:
        return {"gate": "passed"}, ()
    failures = [str(f) for f in gate.get("failures") or []]
    detail = f" ({failures[0]}{'; ...' if len(failures) > 1 else ''})" if failures else ""
    return {"gate": "FAILED"}, (f"{what} FAILED its INT8 accuracy gate{detail}",)


def graph_verification(path: str | Path, precision: str) -> Verification:
    """An ONNX graph: its sidecar's sha256 (where it has a sidecar) and, for INT8, the recorded accuracy gate. An
    INT8 graph without its sidecar is refused: its gate is unknown."""
    path = Path(path)
    side = sidecar_path(path)
    if not side.is_file():
        checked = (f"no sidecar ({side.name}): sha256 not checked",)
        if precision != "int8":
            return Verification(str(path), "graph", checked)
        return Verification(str(path), "graph", checked, {"gate": "not recorded"},
                            (f"the INT8 graph has no sidecar ({side.name}), so no recorded accuracy gate",))
    payload = read_sidecar(path, verify=True)
    verification = Verification(str(path), "graph", ("sha256 matches the sidecar",))
    if precision != "int8":
        return verification
    verdicts, refusals = gate_verdict(payload, "the INT8 graph")
    return replace(verification, verdicts=verdicts, refusals=refusals)


def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{what} does not parse: {exc}", path) from None
    if not isinstance(payload, dict):
        raise ArtifactError(f"{what} is not a JSON object", path)
    return payload


def verify_ir_files(xml: str | Path, payload: dict[str, Any]) -> None:
    """The IR's .xml and .bin against the sha256s its sidecar records: the three files are published one after
    another, so a mixed set (a new IR with an old sidecar, or the reverse) is refused."""
    xml = Path(xml)
    weights = xml.with_suffix(".bin")
    if payload.get("graph_sha256") != sha256_file(xml) or payload.get("weights_sha256") != sha256_file(weights):
        raise _sha_mismatch("OpenVINO IR (.xml and .bin) does not match its sidecar", xml,
                            "calibrate it again (`gedge calibrate --target openvino`)")


def ir_verification(xml: str | Path, payload: dict[str, Any]) -> Verification:
    """An OpenVINO IR whose sidecar ``payload`` was read (and its hashes verified) by the IR reader."""
    verification = Verification(str(xml), "ir", ("sha256 of the .xml and .bin match the sidecar",))
    if payload.get("precision") != "int8":
        return verification
    verdicts, refusals = gate_verdict(payload, "the INT8 IR")
    return replace(verification, verdicts=verdicts, refusals=refusals)


def _parity_entry(entry: Any) -> tuple[str, str]:
    """(status, why) of one parity entry of a manifest."""
    if not isinstance(entry, dict):
        return "not recorded", ""
    return str(entry.get("status", "not recorded")), str(entry.get("reason") or "; ".join(entry.get("failures") or []))


def engine_verification(engine: str | Path, manifest: dict[str, Any], checked: str) -> Verification:
    """An engine's recorded parity (``manifest["parity"]``) and forced verdicts. Failed parity (of the engine, or
    of the graph it was built from) is a refusal; parity not measured, and verdicts forced at build time, are
    warnings. ``checked``: what the caller verified of the engine's bytes."""
    parity = manifest.get("parity") if isinstance(manifest.get("parity"), dict) else {}
    verdicts, refusals, warnings = {}, [], []
    for kind in ("engine", "graph"):
        if kind == "graph" and kind not in parity:
            continue
        status, why = _parity_entry(parity.get(kind))
        verdicts[f"{kind} parity"] = status
        if status == "failed":
            refusals.append(f"the engine's recorded {kind} parity FAILED" + (f" ({why})" if why else ""))
    engine_status = verdicts.get("engine parity")
    if engine_status != "passed" and not refusals:
        graph_ok = verdicts.get("graph parity") == "passed"
        warnings.append(f"engine parity {engine_status}" + (" (its graph passed parity on ONNX Runtime)" if graph_ok
                                                             else "") + "; measure it with `gedge parity`")
    forced = [str(f) for f in manifest.get("forced") or []]
    if forced:
        warnings.append("built with --force over: " + "; ".join(forced))
    return Verification(str(engine), "engine", (checked,), verdicts, tuple(refusals), tuple(warnings))


def cache_verification(cache: str | Path, graph: str | Path) -> Verification:
    """A TensorRT calibration cache against its sidecar (``<cache>.json``): its own sha256, the sha256 of the FP32
    graph it is used with, and the accuracy gate of the Q/DQ graph made from the same ranges."""
    cache, graph = Path(cache), Path(graph)
    side = cache.with_name(cache.name + ".json")
    if not side.is_file():
        return Verification(str(cache), "calibration cache", (f"no sidecar ({side.name}): nothing to check",),
                            {"gate": "not recorded"},
                            (f"the calibration cache has no sidecar ({side.name}), so neither the graph it belongs "
                             "to nor an accuracy gate can be checked",))
    payload = read_json(side, "calibration cache sidecar")
    if payload.get("sha256") != sha256_file(cache):
        raise _sha_mismatch("calibration cache does not match its sidecar", cache, "calibrate again")
    if payload.get("graph_sha256") != sha256_file(graph):
        raise ArtifactError(f"the calibration cache was made for another graph ({payload.get('graph', '?')}, sha256 "
                            f"{str(payload.get('graph_sha256'))[:12]}), not {graph.name}; calibrate this graph "
                            "again", cache)
    verdicts, refusals = gate_verdict(payload, "the calibration cache's Q/DQ graph")
    return Verification(str(cache), "calibration cache", ("sha256 and its FP32 graph's sha256 match the sidecar",),
                        verdicts, refusals)
