"""When training stops: after a fixed number of steps, or (``--steps auto``, the default) once validation has
stopped improving.

Best steps differ by data set by a factor of three or more (about 900 steps on one set, 1650 on another, 1200-1500
on the real wood boards), so a fixed count is wrong both ways. :class:`StopRule` watches the selection AUROC at
every validation (the best candidate score's proxy AUROC, what model selection keeps the best of): training stops
when ``patience`` validations in a row have not beaten the best by ``min_delta`` (only validations after G's
reconstruction has settled count: :func:`reconstruction_settled`), and in any case at
``max_steps`` or after ``time_limit_s``. :func:`stop_notes` says when the result may not have converged: the best
validation is the last one, or the AUROC was still rising when a cap stopped the run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from gedge.core.errors import ConfigError

RISING_WINDOW = 3  # validations over which "still rising at the cap" is judged
# A validation counts for model selection once G's reconstruction has settled: its validation normals' L1 error
# fell by less than this share per 150 steps since the previous validation. Before that the residual scores
# change with every step and a proxy AUROC can spike on an undertrained model (the case that showed it:
# docs/training.md, "Only a settled reconstruction counts").
SETTLED_FALL = 0.15
SETTLED_INTERVAL = 150
# The settled checkpoint is kept only if its reconstruction error is within this factor of the run's lowest.
NEAR_FINAL = 1.5


def reconstruction_settled(recon: list[float], steps: list[int]) -> list[bool]:
    """For each validation, whether the reconstruction error had settled (see :data:`SETTLED_FALL`). The first
    validation has nothing to compare with and counts as not settled (a run with one validation keeps it anyway:
    model selection prefers settled validations, and takes the best of the others when there is none)."""
    settled = [False] if recon else []
    for i in range(1, len(recon)):
        previous, interval = recon[i - 1], max(1, steps[i] - steps[i - 1])
        fall = (previous - recon[i]) / previous if previous > 0 else 0.0
        settled.append(fall < SETTLED_FALL * interval / SETTLED_INTERVAL)
    return settled


def selected_index(recon: list[float], selection: list[float], steps: list[int]) -> int:
    """Which validation model selection ends with (what :mod:`gedge.reference.train` keeps online): the first
    with the highest selection AUROC among the settled ones, if its reconstruction error is within
    :data:`NEAR_FINAL` of the run's lowest; otherwise (no settled one, or one from before G began to
    reconstruct) the first with the highest selection AUROC of all."""
    settled = reconstruction_settled(recon, steps)
    raw = max(range(len(selection)), key=lambda i: (selection[i], -i))
    candidates = [i for i in range(len(selection)) if settled[i]]
    if not candidates:
        return raw
    best = max(candidates, key=lambda i: (selection[i], -i))
    return best if recon[best] <= NEAR_FINAL * min(recon) else raw


def counted(selection: list[float], settled: list[bool]) -> list[float]:
    """The selection AUROCs the stop rule counts: those of the validations after the reconstruction settled."""
    return [value for value, ok in zip(selection, settled) if ok]


@dataclass(frozen=True)
class StopRule:
    steps: int | None = None  # a fixed number of steps; None: stop on a validation plateau (--steps auto)
    max_steps: int = 6000
    time_limit_s: float | None = 3600.0
    patience: int = 5  # validations without a gain of min_delta before a plateau stops the run
    min_delta: float = 0.002
    min_steps: int = 600  # a plateau stops the run only after this many steps

    def __post_init__(self) -> None:
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"steps must be positive (or auto), got {self.steps}")
        if self.max_steps < 1 or self.patience < 1 or self.min_steps < 0:
            raise ConfigError("max steps and patience must be positive, min steps 0 or more")
        if self.time_limit_s is not None and self.time_limit_s <= 0:
            raise ConfigError(f"time limit must be positive, got {self.time_limit_s}")

    @property
    def cap(self) -> int:
        """The last step this rule allows."""
        return self.steps if self.steps is not None else self.max_steps

    def to_dict(self) -> dict:
        return asdict(self)

    def reason_to_stop(self, step: int, selection: list[float], elapsed_s: float, settled: bool = True) -> str | None:
        """Why training stops after ``step`` (None: go on); ``selection`` holds the counted validations' AUROCs
        so far; ``settled``: whether G's reconstruction had settled at the last one (no plateau stops a run
        while it is still learning to reconstruct)."""
        if step >= self.cap:
            return f"{'the step count' if self.steps is not None else 'the step cap'} ({self.cap})"
        if self.time_limit_s is not None and elapsed_s >= self.time_limit_s:
            return f"the time limit ({self.time_limit_s:.0f} s)"
        if (self.steps is None and settled and step >= self.min_steps
                and plateau(selection, self.patience, self.min_delta)):
            return f"a validation plateau ({self.patience} validations without a gain of {self.min_delta:g})"
        return None


def plateau(selection: list[float], patience: int, min_delta: float) -> bool:
    """Whether the last ``patience`` values all fail to beat the best before them by ``min_delta``."""
    if len(selection) <= patience:
        return False
    best_before = max(selection[:-patience])
    return max(selection[-patience:]) < best_before + min_delta


def stop_notes(selection: list[float], steps: list[int], best_step: int, reason: str, rule: StopRule) -> list[str]:
    """Warnings about convergence: the best is the last validation, or validation was still rising at a cap."""
    notes = []
    if not steps:
        return notes
    if best_step == steps[-1] and len(steps) > 1:
        notes.append(f"the best checkpoint is the last validation (step {best_step}): training may not have "
                     "converged; allow more steps (--max-steps, --time-limit) or fewer for a quicker run")
    capped = not reason.startswith("a validation plateau")
    window = selection[-RISING_WINDOW:]
    if capped and len(window) == RISING_WINDOW and window[-1] > window[0] + rule.min_delta:
        notes.append(f"validation AUROC was still rising when {reason} stopped training "
                     f"({window[0]:.3f} -> {window[-1]:.3f} over the last {RISING_WINDOW} validations)")
    return notes
