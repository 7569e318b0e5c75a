"""Tables of `gedge calibrate`'s layer sensitivity and the accuracy-aware fallback's outcome."""

from __future__ import annotations

from gedge.calibrate.fallback import FallbackResult
from gedge.calibrate.pipeline import FlavourResult
from rich.table import Table


def sensitivity_table(flavour: FlavourResult) -> Table:
    """The quantized layers by harm: the primary score's relative L2 error and decision flips on the gate images,
    with the layer quantized alone and with it alone left in float."""
    rows = flavour.precision.sensitivity or []
    n = rows[0].alone.n_images if rows else 0
    table = Table(title=f"Layer sensitivity, {flavour.target} ({n} gate images; most harmful first)",
                  title_justify="left")
    for column in ("layer", "op", "MACs", "alone: rel L2", "alone: flips", "in float: rel L2", "in float: flips",
                   "in float: gate"):
        table.add_column(column, justify="left" if column in ("layer", "op") else "right")
    for row in rows:
        left = row.left_float
        table.add_row(row.layer.name, row.layer.op_type, f"{row.layer.macs / 1e6:.2f}M", f"{row.alone.rel_l2:.4f}",
                      str(row.alone.flips), "-" if left is None else f"{left.rel_l2:.4f}",
                      "-" if left is None else str(left.flips),
                      "-" if left is None else ("PASS" if left.passed else "FAIL"))
    return table


def fallback_line(result: FallbackResult) -> str:
    """Gate before and after, the layers kept in float and the INT8 share, in one line."""
    before, after = result.before, result.after
    kept = ", ".join(result.kept) if result.kept else "none"
    return (f"{'PASS' if result.passed else 'FAIL'}: kept in float: {kept}; INT8 MACs "
            f"{result.int8_share_before:.1%} -> {result.int8_share:.1%}; gate before: rel L2 {before.rel_l2:.4f}, "
            f"{before.flips} flips ({'PASS' if before.passed else 'FAIL'}); after: rel L2 {after.rel_l2:.4f}, "
            f"{after.flips} flips ({'PASS' if after.passed else 'FAIL'}); {result.reason}")
