"""Synthetic anomalies painted on training batches: what the generator learns to remove.

GANomaly learns to reconstruct normal inputs; nothing stops it from reconstructing a defect as well, and a defect
it reconstructs leaves no residual. gedge therefore paints synthetic anomalies on part of every training batch and
trains G to return the *clean* input (a denoising objective, as DRAEM's reconstructive network learns; Zavrtanik
et al., ICCV 2021). At inference nothing changes: G has learnt to replace what does not belong by what normally
is there, so real defects leave larger residuals (D1, D3 and their local forms).

The anomalies are generic and drawn from the batch itself, so no external texture set is needed: a region shaped
as smooth-noise blobs (thresholded value noise of random scale), a thin wavy line (cracks, scratches) or a small
soft spot (holes, pits), filled with another tile's texture (turned and rescaled), with the tile itself made
darker or brighter, or with a flat tone, and blended with a random opacity. Everything is drawn from one seeded
``torch.Generator`` whose state the training state saves, so a resumed run paints the same anomalies.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

KINDS = ("blobs", "line", "spot")


def _blob_masks(k: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """(k, 1, size, size) in {0, 1}: smooth noise on a coarse lattice (2, 4 or 8 cells) above a high quantile."""
    out = torch.empty(k, 1, size, size)
    cells = 2 ** torch.randint(1, 4, (k,), generator=gen)
    for c in cells.unique().tolist():
        idx = torch.nonzero(cells == c).flatten()
        lattice = torch.rand(len(idx), 1, c + 1, c + 1, generator=gen)
        noise = F.interpolate(lattice, size=(size, size), mode="bicubic", align_corners=True).flatten(1)
        share = 0.75 + 0.22 * torch.rand(len(idx), 1, generator=gen)  # 3 to 25 % of the tile
        level = torch.quantile(noise, share.squeeze(1), dim=1).diagonal().unsqueeze(1)
        out[idx] = (noise > level).float().view(len(idx), 1, size, size)
    return out


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    axis = torch.arange(size, dtype=torch.float32)
    return axis.view(1, 1, size, 1), axis.view(1, 1, 1, size)


def _line_masks(k: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """(k, 1, size, size) in [0, 1]: soft wavy lines 0.5 to 2 pixels wide, 30 to 100 % of the tile long."""
    yy, xx = _grid(size)
    r = torch.rand(6, k, 1, 1, 1, generator=gen)
    y0, x0, angle = r[0] * size, r[1] * size, r[2] * math.pi
    length, width = (0.3 + 0.7 * r[3]) * size, 0.5 + 1.5 * r[4]
    dy, dx = torch.sin(angle), torch.cos(angle)
    along = (yy - y0) * dy + (xx - x0) * dx
    across = -(yy - y0) * dx + (xx - x0) * dy
    wobble = 1.5 * torch.sin(along / size * 6.0 + r[5] * 2 * math.pi)
    return (1.0 - (across - wobble).abs() / width).clamp(0, 1) * (along.abs() <= length / 2)


def _spot_masks(k: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """(k, 1, size, size) in [0, 1]: soft ellipses of 4 to 16 % of the tile across."""
    yy, xx = _grid(size)
    r = torch.rand(5, k, 1, 1, 1, generator=gen)
    cy, cx = (0.15 + 0.7 * r[0]) * size, (0.15 + 0.7 * r[1]) * size
    ry, rx = (0.04 + 0.12 * r[2]) * size, (0.04 + 0.12 * r[3]) * size
    c, s = torch.cos(r[4] * math.pi), torch.sin(r[4] * math.pi)
    u = ((xx - cx) * c + (yy - cy) * s) / rx
    v = (-(xx - cx) * s + (yy - cy) * c) / ry
    return (1.5 - 1.5 * torch.sqrt(u * u + v * v)).clamp(0, 1)


def anomaly_masks(k: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """(k, 1, size, size) blending weights in [0, 1], a kind of :data:`KINDS` drawn for each."""
    kind = torch.randint(0, len(KINDS), (k,), generator=gen)
    masks = torch.zeros(k, 1, size, size)
    for code, maker in enumerate((_blob_masks, _line_masks, _spot_masks)):
        idx = torch.nonzero(kind == code).flatten()
        if len(idx):
            masks[idx] = maker(len(idx), size, gen)
    return masks


def _fills(x: torch.Tensor, donors: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """What each anomaly shows, per tile of ``x``: a donor tile's texture, the tile darker or brighter, or a flat
    tone (float in [-1, 1])."""
    k = x.shape[0]
    gain = torch.where(torch.rand(k, 1, 1, 1, generator=gen) < 0.5, 0.2 + 0.5 * torch.rand(k, 1, 1, 1, generator=gen),
                       1.3 + 0.6 * torch.rand(k, 1, 1, 1, generator=gen))
    unit = (x + 1) / 2
    rescaled = (unit * gain).clamp(0, 1) * 2 - 1
    flat = (unit.mean(dim=(2, 3), keepdim=True) * gain).clamp(0, 1).expand_as(x) * 2 - 1
    texture = (donors * (0.8 + 0.4 * torch.rand(k, 1, 1, 1, generator=gen))).clamp(-1, 1)
    choice = torch.randint(0, 3, (k, 1, 1, 1), generator=gen)
    return torch.where(choice == 0, texture, torch.where(choice == 1, rescaled, flat))


def paint_anomalies(x: torch.Tensor, share: float, gen: torch.Generator) -> torch.Tensor:
    """A copy of the batch ``x`` (float NCHW in [-1, 1], square tiles) with one synthetic anomaly on each of about
    ``share`` of its tiles; the others are unchanged."""
    n, _, size, _ = x.shape
    chosen = torch.nonzero(torch.rand(n, generator=gen) < share).flatten()
    if not len(chosen) or share <= 0:
        return x.clone()
    k = len(chosen)
    donors = torch.rot90(x[torch.randint(0, n, (k,), generator=gen)], int(torch.randint(0, 4, (1,), generator=gen)),
                         dims=(2, 3))
    tiles = x[chosen].detach().cpu().float()
    mask = anomaly_masks(k, size, gen)
    keep = 0.6 * torch.rand(k, 1, 1, 1, generator=gen)  # how much of the tile shows through the anomaly
    fill = _fills(tiles, donors.detach().cpu().float(), gen)
    painted = tiles * (1 - mask) + mask * ((1 - keep) * fill + keep * tiles)
    out = x.clone()
    out[chosen] = painted.clamp(-1, 1).to(device=out.device, dtype=out.dtype)
    return out
