"""The reference backend: the checkpoint's networks in eval mode on torch (CPU or CUDA)."""

from __future__ import annotations

import numpy as np
import torch
from gedge.core.inputs import InputSpec
from gedge.core.scores import OUTPUT_NAMES, Scores
from gedge.reference.checkpoint import Checkpoint
from gedge.reference.scoring import DeployedScorer


class TorchBackend:
    """PyTorch eager execution of the fused scorer; what every other backend is compared against."""

    def __init__(self, checkpoint: Checkpoint, device: str = "cpu", with_amap: bool = False) -> None:
        self.name = f"torch-{device}"
        self.device = torch.device(device)
        self.with_amap = with_amap
        self.input_spec = InputSpec(size=checkpoint.model.isize, channels=checkpoint.model.nc)
        self.module = DeployedScorer(checkpoint.scorer(with_amap=with_amap)).to(self.device).eval()

    @torch.inference_mode()
    def score(self, batch: np.ndarray) -> Scores:
        self.input_spec.check(batch)
        outputs = self.module(torch.from_numpy(np.ascontiguousarray(batch)).to(self.device))
        values = {name: t.float().cpu().numpy() for name, t in zip(OUTPUT_NAMES, outputs)}
        if self.with_amap:
            values["amap"] = outputs[len(OUTPUT_NAMES)].float().cpu().numpy()
        return Scores.from_dict(values)

    def close(self) -> None:
        self.module = None  # type: ignore[assignment]
