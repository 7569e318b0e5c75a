"""A TensorRT calibration cache and its sidecar (``<cache>.json``): the calibration cache kind's reader of
:func:`gedge.core.artifacts.open`, its writer, and the check that a cache belongs to the graph it is built with.

The cache's format and its facts are :mod:`gedge.core.artifacts.calibration`'s; how gedge chooses the scales is
:mod:`gedge.calibrate.cache`'s.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from gedge.core.artifacts.artifact import Artifact
from gedge.core.artifacts.calibration import CalibrationCache, CalibrationFacts, parse_cache
from gedge.core.artifacts.records import read_file, read_json, sha256_bytes, write_record
from gedge.core.artifacts.sidecar import sidecar_path
from gedge.core.artifacts.verdicts import Verification, cache_verification, sha_mismatch
from gedge.core.atomic import write_with
from gedge.core.errors import ArtifactError


def read_calibration_cache(path: str | Path) -> Artifact:
    """A calibration cache, read once: its scales, its sha256 checked against its sidecar (where it has one; an error
    on a mismatch) and the recorded gate of its Q/DQ graph read (not enforced here)."""
    path = Path(path)
    data = read_file(path, "calibration cache")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise ArtifactError("calibration cache is not text (UnicodeDecodeError)", path) from None
    cache = parse_cache(text, path)
    sha256 = sha256_bytes(data)
    side = sidecar_path(path)
    facts = CalibrationFacts.from_dict(read_json(side, "calibration cache sidecar"), side) if side.is_file() else None
    if facts is not None and facts.sha256 != sha256:
        raise sha_mismatch("calibration cache does not match its sidecar", path, "calibrate again")
    verification = cache_verification(path, facts.gate if facts else None, facts is not None)
    return Artifact(path, "calibration cache", sha256, None, verification, calibration=facts,
                    facts_file=side if facts is not None else None, data=data, cache=cache)


def check_cache_graph(cache: Artifact, graph: Artifact) -> Verification:
    """The cache's verification, once its sidecar's FP32 graph is ``graph`` (an error when it was made for another
    graph: the tensor names and ranges would be another graph's)."""
    facts = cache.calibration
    if cache.verification is None:
        raise ArtifactError("not a calibration cache", cache.path)
    if facts is None:
        return cache.verification
    if facts.graph_sha256 != graph.sha256:
        raise ArtifactError(f"the calibration cache was made for another graph ({facts.graph or '?'}, sha256 "
                            f"{facts.graph_sha256[:12]}), not {graph.name}; calibrate this graph again", cache.path)
    return replace(cache.verification, checked=("sha256 and its FP32 graph's sha256 match the sidecar",))


def write_cache(cache: CalibrationCache, path: str | Path, facts: CalibrationFacts | None = None) -> Path:
    """The cache (atomically) and, given its facts, its sidecar with the sha256 of the text written."""
    path = Path(path)
    if path.is_dir():
        raise ArtifactError("cache path is a folder; give a file name such as scorer.int8.calib.cache", path)
    text = cache.text()
    write_with(path, lambda tmp: tmp.write_text(text))
    if facts is not None:
        record = replace(facts, cache=path.name, sha256=sha256_bytes(text.encode()), header=cache.header(),
                         tensors=len(cache.scales))
        write_record(sidecar_path(path), "calibration", record.to_dict())
    return path
