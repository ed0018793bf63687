"""tracr-reverse: reverse a sequence over {1, 2, 3} (Tracr program used by the ACDC paper)."""

from __future__ import annotations

from functools import partial

from tasks._tracr import build_tracr_data
from tasks.base import Task

TASK = Task(
    name="tracr-reverse",
    model="tracr-reverse",
    description="reverse a sequence of length 1-5 over {1,2,3}",
    citation="Lindner et al. 2023 (tracr lib.make_reverse); Conmy et al. 2023, ACDC, Sec. 4",
    build=partial(build_tracr_data, "reverse"),
    # Zero ablation as in the ACDC and Edge Pruning Tracr experiments; corrupted as elsewhere.
    suite_ablations=("zero", "corrupted"),
    metric="neg. squared L2 to the full model's output",
    default_examples=363,  # every input of length 1..5
)
