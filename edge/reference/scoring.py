"""The fused scorer: generator, discriminator and residual scores in one module.

Given a batch ``x`` (float NCHW in [-1, 1]) it computes ``G(x)``, runs the discriminator's feature
extractor once on ``[x; G(x)]`` and returns, per image (seed paper, eqs. 1-3, averaged instead of summed
so values do not depend on the image size; rankings and AUROC are unchanged):

* ``d1``     mean |f(x) - f(G(x))|          (L1 of discriminator features)
* ``d2``     sqrt(mean (f(x) - f(G(x)))^2)  (L2 of discriminator features, RMS)
* ``d3``     mean |x - G(x)|                (L1 of the images)
* ``latent`` mean (z - z')^2                (GANomaly's encoder-latent score)
* ``d1_local`` D1 per position of D's first pyramid level (isize/4 square), maximum over positions
* ``d3_local`` D3 averaged over a k x k window (k = isize/8, odd), maximum over windows; where the model's
  ``residual_blur`` is set (training sets it to k), the residual ``x - G(x)`` is first box-blurred at that side,
  so the reconstruction's pixel-level texture noise averages out before the absolute value is taken

The two local scores are gedge's addition: wood defects (knots, cracks, holes) cover a few percent of a
tile, and a mean over the whole tile dilutes them; the same distances taken at the defect's scale keep
them visible (measured on real wood boards: see the README).
* ``score``  the primary score normalised with validation-normal statistics: (s - mean) / std
* ``amap``   |x - G(x)| averaged over channels, (N, H, W)

The reference runs in eval mode (BatchNorm with running statistics), which is what every exported
graph and TensorRT engine computes after folding BatchNorm into the convolutions.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from gedge.core.backend import BackendBase, BackendInfo
from gedge.core.decision import DecisionRule
from gedge.core.inputs import InputSpec, camera_to_nchw
from gedge.core.scores import OUTPUT_NAMES, SCORE_NAMES, Scores
from gedge.reference.model import NetD, NetG, local_window
from torch import nn


class FusedScorer(nn.Module):
    """G, D and the residual scores as one module; outputs (d1, d2, d3, latent, score[, amap])."""

    def __init__(self, netg: NetG, netd: NetD, decision: DecisionRule, with_amap: bool = False) -> None:
        super().__init__()
        self.netg = netg
        self.features = netd.features
        self.with_amap = with_amap
        # D's features up to and including the first pyramid level (after its BatchNorm and LeakyReLU).
        first_bn = next(i for i, m in enumerate(netd.features) if isinstance(m, nn.BatchNorm2d) and
                        isinstance(netd.features[i - 1], nn.Conv2d) and netd.features[i - 1].stride == (2, 2))
        self.mid_level = first_bn + 2
        self.window = local_window(_input_size(netg))
        self.residual_blur = netg.config.residual_blur
        self.primary_indices = [SCORE_NAMES.index(p) for p in decision.components]
        self.register_buffer("score_mean", torch.tensor(float(decision.mean)))
        self.register_buffer("score_std", torch.tensor(float(decision.std)))
        if len(self.primary_indices) > 1:  # a fused primary: the mean z-score of its components
            self.register_buffer("component_mean", torch.tensor(decision.component_mean, dtype=torch.float32))
            self.register_buffer("component_std", torch.tensor(decision.component_std, dtype=torch.float32))

    def primary(self, scores: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The primary score before normalisation: one residual score, or the mean z-score of several."""
        if len(self.primary_indices) == 1:
            return scores[self.primary_indices[0]]
        parts = torch.stack([scores[i] for i in self.primary_indices], dim=1)
        return ((parts - self.component_mean) / self.component_std).mean(dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n = x.shape[0]
        fake, latent_i, latent_o = self.netg(x)
        mid = self.features[: self.mid_level](torch.cat([x, fake], dim=0))
        feats = self.features[self.mid_level:](mid).flatten(1)
        feat_diff = feats[:n] - feats[n:]
        residual = x - fake
        image_diff = residual.abs()
        amap = image_diff.mean(dim=1, keepdim=True)
        d1 = feat_diff.abs().mean(dim=1)
        d2 = feat_diff.pow(2).mean(dim=1).sqrt()
        d3 = image_diff.flatten(1).mean(dim=1)
        latent = (latent_i - latent_o).flatten(1).pow(2).mean(dim=1)
        d1_local = (mid[:n] - mid[n:]).abs().mean(dim=1).flatten(1).amax(dim=1)
        d3_local = F.avg_pool2d(self.local_residual(residual, amap), self.window, stride=1).flatten(1).amax(dim=1)
        scores = (d1, d2, d3, latent, d1_local, d3_local)
        score = (self.primary(scores) - self.score_mean) / self.score_std
        if self.with_amap:
            return (*scores, score, amap.squeeze(1))
        return (*scores, score)

    def local_residual(self, residual: torch.Tensor, amap: torch.Tensor) -> torch.Tensor:
        """What d3_local averages: ``amap``, or the channel mean of ``|blur(residual)|`` where the model blurs."""
        if not self.residual_blur:
            return amap
        blurred = F.avg_pool2d(residual, self.residual_blur, stride=1, padding=self.residual_blur // 2,
                               count_include_pad=False)
        return blurred.abs().mean(dim=1, keepdim=True)


def _input_size(netg: NetG) -> int:
    """The generator's input side: 4 doubled once per ConvTranspose after the first."""
    n_up = sum(isinstance(m, nn.ConvTranspose2d) for m in netg.decoder.main) - 1
    return 4 * 2**n_up


class CameraInput(nn.Module):
    """uint8 NHWC camera bytes to float NCHW in [-1, 1]; the scorer's deployment front end.

    The cast comes first: TensorRT takes uint8 only into a Cast (its parser rejects a Transpose of uint8).
    """

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return camera_to_nchw(pixels)


class DeployedScorer(nn.Module):
    """The deployed graph: camera bytes in, scores out (what ``gedge export`` writes to ONNX)."""

    def __init__(self, scorer: FusedScorer, uint8_input: bool = True) -> None:
        super().__init__()
        self.camera = CameraInput() if uint8_input else nn.Identity()
        self.scorer = scorer

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.scorer(self.camera(pixels))


class ReferenceScorer(BackendBase):
    """The reference: a checkpoint's fused scorer in eval mode on torch, scoring uint8 NHWC batches.

    What every other backend is compared against (the runtime registers it as the ``torch`` backend), and what
    training validates with (:meth:`of_networks`) and the decision rule is fitted with: one implementation of
    "score images with the reference".
    """

    def __init__(self, checkpoint, device: str = "cpu", with_amap: bool = False) -> None:
        spec = InputSpec(size=checkpoint.model.isize, channels=checkpoint.model.nc)
        self._attach(checkpoint.scorer(with_amap=with_amap), spec, device)

    @classmethod
    def of_networks(cls, netg: NetG, netd: NetD, input_spec: InputSpec, device: str = "cpu") -> ReferenceScorer:
        """The reference over networks still in training (no checkpoint yet), with the neutral decision rule.

        The networks are used in place, not copied, and are put in eval mode; ``score`` is then the raw d1.
        """
        scorer = cls.__new__(cls)
        scorer._attach(FusedScorer(netg, netd, DecisionRule()), input_spec, device)
        return scorer

    def _attach(self, fused: FusedScorer, input_spec: InputSpec, device: str) -> None:
        self.name = f"torch-{device}"
        self.device = torch.device(device)
        self.with_amap = fused.with_amap
        self.input_spec = input_spec
        self.module = DeployedScorer(fused).to(self.device).eval()
        where = "cuda" if self.device.type == "cuda" else "cpu"
        self.info = BackendInfo(kind="torch", label=f"torch eager ({where})", precision="fp32", device=where,
                                with_amap=self.with_amap)

    @torch.inference_mode()
    def score_impl(self, batch: np.ndarray) -> Scores:
        outputs = self.module(torch.from_numpy(np.ascontiguousarray(batch)).to(self.device))
        values = {name: t.float().cpu().numpy() for name, t in zip(OUTPUT_NAMES, outputs)}
        if self.with_amap:
            values["amap"] = outputs[len(OUTPUT_NAMES)].float().cpu().numpy()
        return Scores.from_dict(values)

    def close(self) -> None:
        self.module = None  # type: ignore[assignment]
