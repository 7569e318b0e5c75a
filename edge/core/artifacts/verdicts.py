"""What an artifact's recorded facts prove when it is read, and the one rule that enforces its recorded verdicts.

Every artifact gedge writes carries the hashes that bind it to its facts and, where a check judged it, the
verdict: an INT8 graph or IR the accuracy gate of ``gedge calibrate`` (``gate`` in its sidecar), an engine the
parity measured at build time (``parity`` in its manifest) and the verdicts overridden when it was built
(``forced``), a TensorRT calibration cache the gate of the Q/DQ graph made from the same ranges and the sha256
of the FP32 graph it belongs to. The readers (:func:`gedge.core.artifacts.open`) check the hashes (a recorded hash
that does not match is an :class:`~gedge.core.errors.ArtifactError` of one line that says to re-export: the files
were replaced, modified or published only in part) and read the verdicts into a :class:`Verification`, with the
functions here:

* a failed verdict (or an INT8 artifact with no recorded gate) is a refusal: :func:`enforce` raises
  :class:`RefusedArtifact` (exit code 1) naming the verdict, unless the user forces it, and then the forced
  verdicts travel on (an engine's manifest records them as ``forced``);
* a verdict not measured (engine parity "pending", "not measured" or "error") or a verdict overridden earlier
  (``forced``) is a warning the commands print.

The verification travels with the :class:`~gedge.core.artifacts.artifact.Artifact`; it is enforced where an
artifact is used: the runtime registry's ``open_backend`` (every backend of ``inspect``, ``bench``, ``parity`` and
``serve``), ``gedge serve`` and ``gedge triton export``, and ``gedge build`` (the graph and the calibration cache).
The C++ firmware applies the same rule to an engine's manifest (``edge/firmware/src/compat.cpp``). No heavy
imports: a device checks the facts before it loads any library.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from gedge.core.artifacts.records import GateRecord
from gedge.core.errors import ArtifactError, CheckFailed

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
    unverified: bool = False  # no sidecar: its hashes and recorded facts could not be checked (a warning says so)

    @property
    def status(self) -> str:
        """forced, refused, unverified, warning or verified."""
        if self.forced:
            return "forced"
        if self.refusals:
            return "refused"
        if self.unverified:
            return "unverified"
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


def sha_mismatch(what: str, path: str | Path, redo: str) -> ArtifactError:
    """The one error of a recorded sha256 that does not match the file."""
    return ArtifactError(f"{what} (sha256 differs: replaced, modified or only partly published?); {redo}", path)


def gate_verdict(gate: GateRecord | None, what: str) -> tuple[dict[str, str], tuple[str, ...]]:
    """({"gate": state}, refusals) of an INT8 artifact's recorded accuracy gate."""
    if gate is None or gate.passed is None:
        return {"gate": "not recorded"}, (f"{what} records no accuracy gate (made by `gedge calibrate`?)",)
    if gate.passed:
        return {"gate": "passed"}, ()
    failures = gate.failures
    detail = f" ({failures[0]}{'; ...' if len(failures) > 1 else ''})" if failures else ""
    return {"gate": "FAILED"}, (f"{what} FAILED its INT8 accuracy gate{detail}",)


@dataclass(frozen=True)
class Contents:
    """What a graph or IR says about itself, read from the file's own content (not from its sidecar or an editable
    label): whether it holds quantizers (``Q/DQ`` nodes in ONNX, ``FakeQuantize`` layers in an IR: it is INT8,
    whatever its metadata says) and the accuracy gate's verdict and limits `gedge calibrate` wrote into it before it
    was hashed (None: none written)."""

    int8: bool
    gate: GateRecord | None = None
    marks: str = "Q/DQ nodes"  # what makes it INT8, for the messages


def canonical_gate(gate: GateRecord) -> str:
    """A gate record as one comparable string (the embedded copy and the sidecar's must be equal)."""
    return json.dumps(gate.to_dict(), sort_keys=True, default=str)


def _precision_refusals(kind: str, recorded: str, contents: Contents) -> list[str]:
    if contents.int8 == (recorded == "int8"):
        return []
    if contents.int8:
        return [f"the {kind} holds {contents.marks}, so it is INT8, but its recorded precision says {recorded} "
                "(an edited label?); export or calibrate it again"]
    return [f"the {kind} records precision int8 but holds no {contents.marks} (an edited label?); export or "
            "calibrate it again"]


def _inside_gate(kind: str, gate: GateRecord | None, contents: Contents) -> tuple[dict[str, str], list[str]]:
    """An INT8 artifact's gate: the verdict written inside the file rules; the sidecar's copy must be the same."""
    what = f"the INT8 {kind}"
    if contents.gate is None:
        if gate is None or gate.passed is None:
            verdicts, refusals = gate_verdict(None, what)
            return verdicts, list(refusals)
        return {"gate": "not in the file"}, [f"{what} does not carry its accuracy gate's verdict inside it, so its "
                                              "sidecar's cannot be trusted; re-run `gedge calibrate`"]
    verdicts, refusals = gate_verdict(contents.gate, what)
    if gate is None or canonical_gate(gate) != canonical_gate(contents.gate):
        recorded = "none" if gate is None else ("passed" if gate.passed else "FAILED")
        inside = "passed" if contents.gate.passed else "FAILED"
        return verdicts, [f"{what}'s sidecar gate ({recorded}) differs from the gate recorded inside the {kind} "
                          f"({inside}): the sidecar was edited; re-run `gedge calibrate`", *refusals]
    return verdicts, list(refusals)


def graph_verification(path: str | Path, precision: str, gate: GateRecord | None, has_sidecar: bool,
                       contents: Contents, kind: str = "graph") -> Verification:
    """A graph (or IR, ``kind``) whose sidecar, if it has one, matched its sha256. It is INT8 when it holds
    quantizers, whatever ``precision`` (its recorded label) says, and a label that disagrees is a refusal. An INT8
    one is judged by the gate written inside it, which its sidecar's must equal. Without a sidecar it is
    "unverified" (a warning naming what was not checked), and refused when it is INT8: no gate record to check."""
    path = Path(path)
    refusals = _precision_refusals(kind, precision, contents)
    if not has_sidecar:
        side = f"{path.name}.json"
        warnings = (f"no sidecar ({side}): its sha256 and recorded facts not checked",)
        if not contents.int8:
            return Verification(str(path), kind, (), refusals=tuple(refusals), warnings=warnings, unverified=True)
        refusals.append(f"the INT8 {kind} has no sidecar ({side}), so no recorded accuracy gate")
        return Verification(str(path), kind, (), {"gate": "not recorded"}, tuple(refusals), warnings,
                            unverified=True)
    checked = ("sha256 matches the sidecar",) if kind == "graph" else ("sha256 of the .xml and .bin match the "
                                                                       "sidecar",)
    if not contents.int8:
        return Verification(str(path), kind, checked, refusals=tuple(refusals))
    verdicts, gate_refusals = _inside_gate(kind, gate, contents)
    return Verification(str(path), kind, checked, verdicts, tuple(refusals + gate_refusals))


def ir_verification(xml: str | Path, precision: str, gate: GateRecord | None, contents: Contents) -> Verification:
    """An OpenVINO IR whose .xml and .bin matched its sidecar: INT8 when it holds FakeQuantize layers, judged by the
    gate written into its ``rt_info``, which the sidecar's must equal."""
    return graph_verification(xml, precision, gate, True, contents, "IR")


def parity_verdicts(parity: dict[str, tuple[str, str]], forced: tuple[str, ...], engine: str | Path,
                    checked: str) -> Verification:
    """An engine's recorded parity (``{"engine": (status, why), "graph": ...}``) and the verdicts forced when it was
    built. Failed parity (of the engine, or of the graph it was built from) is a refusal; parity not measured, and
    verdicts forced at build time, are warnings. ``checked``: what was verified of the engine's bytes."""
    verdicts, refusals, warnings = {}, [], []
    for kind in ("engine", "graph"):
        if kind == "graph" and kind not in parity:
            continue
        status, why = parity.get(kind, ("not recorded", ""))
        verdicts[f"{kind} parity"] = status
        if status == "failed":
            refusals.append(f"the engine's recorded {kind} parity FAILED" + (f" ({why})" if why else ""))
    engine_status = verdicts.get("engine parity")
    if engine_status != "passed" and not refusals:
        graph_ok = verdicts.get("graph parity") == "passed"
        warnings.append(f"engine parity {engine_status}" + (" (its graph passed parity on ONNX Runtime)" if graph_ok
                                                             else "") + "; measure it with `gedge parity`")
    if forced:
        warnings.append("built with --force over: " + "; ".join(forced))
    return Verification(str(engine), "engine", (checked,), verdicts, tuple(refusals), tuple(warnings))


def cache_verification(cache: str | Path, gate: GateRecord | None, has_sidecar: bool) -> Verification:
    """A TensorRT calibration cache whose sidecar (if it has one) matched its sha256: the accuracy gate of the Q/DQ
    graph made from the same ranges. Which graph it belongs to is checked where it is used with one
    (:func:`gedge.core.artifacts.calib_cache.check_cache_graph`)."""
    cache = Path(cache)
    if not has_sidecar:
        side = f"{cache.name}.json"
        return Verification(str(cache), "calibration cache", (f"no sidecar ({side}): nothing to check",),
                            {"gate": "not recorded"},
                            (f"the calibration cache has no sidecar ({side}), so neither the graph it belongs "
                             "to nor an accuracy gate can be checked",))
    verdicts, refusals = gate_verdict(gate, "the calibration cache's Q/DQ graph")
    return Verification(str(cache), "calibration cache", ("sha256 matches the sidecar",), verdicts, refusals)
