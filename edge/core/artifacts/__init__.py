"""A model file's facts in one place: :func:`open` reads a checkpoint, an ONNX graph, an OpenVINO IR, a TensorRT
engine or a calibration cache once (its bytes, their sha256, the sidecar or manifest next to it checked against
them, its recorded verdicts) into one :class:`Artifact`, which every later stage takes instead of the path.

The kinds and their readers are one suffix table (:mod:`gedge.core.artifacts.opening`); the facts every kind shares
are :class:`~gedge.core.artifacts.facts.ModelFacts`; what one kind adds is its own record: a graph's or IR's
:class:`~gedge.core.artifacts.sidecar.GraphSidecar`, an engine's :class:`~gedge.core.artifacts.manifest.EngineManifest`,
a cache's :class:`~gedge.core.artifacts.calibration.CalibrationFacts`. Export and calibrate write them; everything
else reads them through here. No heavy imports: torch is loaded only when a checkpoint is read.
"""

from gedge.core.artifacts.artifact import Artifact
from gedge.core.artifacts.opening import SUFFIXES, kind_of, open

__all__ = ["SUFFIXES", "Artifact", "kind_of", "open"]
