"""Defect boxes: tiles over the threshold that overlap or touch, merged into one box each (image pixels)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Box:
    """Merged over-threshold tiles: image pixels (x1, y1 exclusive), the highest tile score, the tile count."""

    x0: int
    y0: int
    x1: int
    y1: int
    score: float
    tiles: int

    def intersects(self, other: tuple[int, int, int, int]) -> bool:
        x0, y0, x1, y1 = other
        return self.x0 < x1 and x0 < self.x1 and self.y0 < y1 and y0 < self.y1


def merge_boxes(rects: list[tuple[int, int, int, int]], scores: list[float]) -> list[Box]:
    """Groups of rectangles that overlap or touch, each as its bounding box (highest score first)."""
    n = len(rects)
    if not n:
        return []
    r = np.asarray(rects, dtype=np.int64)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # touching counts (<=): tiles side by side with no overlap are one defect
    near = ((r[:, None, 0] <= r[None, :, 2]) & (r[None, :, 0] <= r[:, None, 2])
            & (r[:, None, 1] <= r[None, :, 3]) & (r[None, :, 1] <= r[:, None, 3]))
    for i, j in zip(*np.nonzero(np.triu(near, 1))):
        a, b = find(int(i)), find(int(j))
        if a != b:
            parent[b] = a
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    boxes = []
    for members in groups.values():
        g = r[members]
        boxes.append(Box(int(g[:, 0].min()), int(g[:, 1].min()), int(g[:, 2].max()), int(g[:, 3].max()),
                         float(max(scores[i] for i in members)), len(members)))
    return sorted(boxes, key=lambda b: -b.score)
