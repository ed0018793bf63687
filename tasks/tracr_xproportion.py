"""tracr-xproportion: running fraction of "x" tokens (Tracr program used by the ACDC paper)."""

from __future__ import annotations

from functools import partial

from tasks._tracr import build_tracr_data
from tasks.base import Task

TASK = Task(
    name="tracr-xproportion",
    model="tracr-xproportion",
    description="fraction of previous tokens equal to 'x' over {w,x,y,z}, lengths 1-5",
    citation="Lindner et al. 2023 (tracr lib.make_frac_prevs); Conmy et al. 2023, ACDC, Sec. 4",
    build=partial(build_tracr_data, "xproportion"),
    # Zero ablation as in the ACDC and Edge Pruning Tracr experiments; corrupted as elsewhere.
    suite_ablations=("zero", "corrupted"),
    metric="neg. squared L2 to the full model's output",
    default_examples=256,  # of the 1,364 inputs of length 1..5, every length in proportion
)
