"""The benchmarks' timing: :func:`fmrecipes.core.timing.interleaved_medians` (shared with ``reproduce sim``)."""

from fmrecipes.core.timing import interleaved_medians

__all__ = ["interleaved_medians"]
