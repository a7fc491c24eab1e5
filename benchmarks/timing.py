"""The benchmarks' timing: :func:`fmrecipes.core.timing.interleaved_medians` (shared with ``reproduce sim``), and
how a utilisation is printed."""

from fmrecipes.core.timing import interleaved_medians

__all__ = ["interleaved_medians", "significant"]


def significant(x: float, digits: int = 3) -> float:
    """``x`` to ``digits`` significant digits (a small utilisation stays visible: 0.00042, not 0.0)."""
    return float(f"{x:.{digits}g}")
