"""The evaluation report as one self-contained HTML file: the page template (``report.html.j2``, Jinja2 with
autoescaping) filled with a :class:`~gedge.report.content.ReportContent`. Every picture is a data URI and the page
has no script, so it opens from an e-mail or a USB stick with no server and no network.

matplotlib and Jinja2 come with the ``report`` extra; a missing one is a one-line error with the install command.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gedge.core.atomic import write_bytes
from gedge.core.errors import ConfigError
from gedge.core.optional import require
from gedge.core.plots import pyplot
from gedge.report.content import DEFAULT_GALLERY, ReportContent, build_content
from gedge.report.evaluation import Evaluation

TEMPLATE = Path(__file__).with_name("report.html.j2")


@dataclass(frozen=True)
class ReportOptions:
    gallery: int = DEFAULT_GALLERY  # cases shown in pictures per gallery (all are listed)
    batch_size: int = 64  # scoring the gallery's images again for heat maps, where needed

    def __post_init__(self) -> None:
        if self.gallery < 0:
            raise ConfigError(f"the gallery size must be 0 or more, got {self.gallery}")


@dataclass
class ReportResult:
    path: Path
    bytes: int
    seconds: float
    missed: int  # defective test images accepted at the threshold
    rejected: int  # normal test images rejected
    shown: dict[str, int]  # cases in pictures per gallery
    heat_maps: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


def check_report_packages() -> None:
    """A one-line error naming what to install when matplotlib or Jinja2 is missing (before any scoring)."""
    pyplot("the evaluation report")
    require("jinja2", "the evaluation report")


def _number(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _percent(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.1%}"


def render(content: ReportContent) -> str:
    """The page, from the template."""
    jinja2 = require("jinja2", "the evaluation report")
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                                     lstrip_blocks=True, keep_trailing_newline=True)
    environment.filters.update(num=_number, pct=_percent)
    return environment.from_string(TEMPLATE.read_text(encoding="utf-8")).render(c=content)


def write_report(evaluation: Evaluation, path: str | Path, options: ReportOptions | None = None) -> ReportResult:
    """Draw, assemble and write the report of ``evaluation`` to ``path`` (atomically)."""
    options = options or ReportOptions()
    started = time.perf_counter()
    content = build_content(evaluation, options.gallery, options.batch_size)
    html = render(content).encode("utf-8")
    write_bytes(path, html)
    galleries = {g.key: g for g in content.galleries}
    return ReportResult(Path(path), len(html), time.perf_counter() - started, galleries["missed"].total,
                        galleries["rejected"].total, {k: len(g.cases) for k, g in galleries.items()},
                        galleries["missed"].heat_note)
