"""Rich tables of parity reports (``gedge parity``, the calibration gate, the demo). Rendering only: the numbers
come from :mod:`gedge.compare.comparator`."""

from __future__ import annotations

from gedge.cli.render import fmt
from gedge.compare.comparator import ParityReport
from gedge.compare.limits import ParityLimits
from rich import box
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text


def _sci(value: float | None) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.1e}"


def limits_text(lim: ParityLimits) -> str:
    """The limits in one line, e.g. 'rel L2 <= 0.01, Spearman >= 0.99, |AUROC delta| <= 0.01, agreement >= 99.5%'."""
    parts = [f"rel L2 <= {lim.max_rel_l2:g}", f"Spearman >= {lim.min_spearman:g}"]
    if lim.auroc_scores == "primary":
        parts.append(f"primary AUROC drop <= {lim.max_auroc_delta:g}")
    else:
        parts.append(f"|AUROC delta| <= {lim.max_auroc_delta:g}")
    if lim.min_agreement is not None:
        parts.append(f"agreement >= {lim.min_agreement:.1%}")
    if lim.max_new_false_rejects is not None:
        parts.append(f"false rejects added on normals <= {lim.max_new_false_rejects:.1%}")
    if lim.min_anomalous_agreement is not None:
        parts.append(f"agreement on anomalies >= {lim.min_anomalous_agreement:.1%}")
    parts.append(f"primary score shift near the threshold <= {lim.max_score_shift:.1%} of the decision margin, "
                 f"on average <= {lim.max_score_bias:.1%}")
    parts.append(f"at least {lim.min_images} images ({lim.min_normals} normal)")
    parts.append("no NaN/infinity")
    return ", ".join(parts)


def decisions_text(report: ParityReport) -> str:
    """The decisions in one sentence, split into normal and anomalous images where labelled."""
    d = report.decisions
    text = (f"decisions at threshold {d.threshold:.3f}: agreement {d.agreement:.2%} ({d.n_disagree} differ; "
            f"rejected {d.rejected_reference} ref / {d.rejected_candidate} cand)")
    if d.normal is not None and d.normal.n and d.anomalous is not None and d.anomalous.n:
        text += (f"; normals: {d.normal.rejected_reference} ref / {d.normal.rejected_candidate} cand rejected, "
                 f"{d.normal.new_rejects} added by the candidate; anomalies: agreement {d.anomalous.agreement:.2%}")
    return text


def shift_text(report: ParityReport) -> str:
    """The primary score's shift near the threshold in one sentence (what the decision margin guarantees)."""
    shift = report.shift
    if shift is None or shift.margin is None or shift.share is None:
        return "primary score shift: not measured"
    clear = f"; images more than {shift.clear_by:.3g} from the threshold keep their decision" \
        if shift.clear_by is not None and shift.clear_by > 0 else ""
    return (f"primary score shift near the threshold: down {shift.largest_down:.3g}, up {shift.largest_up:.3g}, "
            f"mean {shift.mean:+.3g} ({shift.share:.1%} and {shift.mean_share:.1%} of the decision margin "
            f"{shift.margin:.3g}, over {shift.n_near} images){clear}")


def parity_table(report: ParityReport, title: str | None = None) -> Group:
    """One row per output: errors over every network input, ranks and AUROC over images, pass/fail;
    then the decisions, the limits and the verdict."""
    lim = report.limits
    table = Table(title=title or f"Parity {report.precision.upper()} against the reference",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  padding=(0, 1, 0, 0))
    for column in ("output", "max abs", "max rel", "rel L2", "Spearman"):
        table.add_column(column, justify="left" if column == "output" else "right", no_wrap=True)
    if report.labelled:
        for column in ("AUROC", "cand", "delta"):
            table.add_column(column, justify="right", no_wrap=True)
    table.add_column("", justify="center", no_wrap=True)
    for row in report.outputs:
        cells = [row.name, _sci(row.max_abs), _sci(row.max_rel), _sci(row.rel_l2),
                 "-" if row.spearman is None else f"{row.spearman:.5f}"]
        if report.labelled:
            delta = "-" if row.auroc_delta is None else f"{row.auroc_delta:+.4f}"
            cells += [fmt(row.auroc_reference, 4), fmt(row.auroc_candidate, 4), delta]
        cells.append("[green]ok[/]" if row.passed else "[red]FAIL[/]")
        table.add_row(*cells)
    verdict = "[bold green]PASS[/]" if report.passed else "[bold red]FAIL[/]"
    summary = (
        f"candidate {escape(report.candidate)}, reference {escape(report.reference)}; {report.n_images} images, "
        f"{report.n_inputs} network inputs ({escape(report.data)}); {escape(decisions_text(report))}; "
        f"{escape(shift_text(report))}. "
        f"Limits {report.precision}: {escape(limits_text(lim))}. {verdict}")
    return Group(table, Text.from_markup(summary))
