"""The passes a run's preparation can supply, computed on first use and shared.

A method reads only some of them (EAP never reads the full model's logits, the random
baseline reads nothing), so `prepare_run` computes none eagerly: each is computed the first
time any reader asks for it, and every later reader of the same run (the method, then the
scoring of its output) gets the same tensor.
"""

from __future__ import annotations

from functools import cached_property

import torch

from bench.runtime import AblatedRun, MaskedRuntime
from bench.task_data import TaskData


class SharedPasses:
    """The ablated run and the full model's logits for one (runtime, data, ablation).

    Attributes:
        computed: the names of the passes computed so far, in order (for tests and
            profiling: what a method made the run pay for).
    """

    def __init__(self, runtime: MaskedRuntime, data: TaskData, ablation: str) -> None:
        self.runtime, self.data, self.ablation = runtime, data, ablation
        self.computed: list[str] = []

    @cached_property
    def ablated(self) -> AblatedRun:
        """What every edge falls back to at mask 0 (one forward on the corrupted or reference
        input; none for the zero ablations)."""
        data = self.data
        self.computed.append("ablated")
        return self.runtime.ablate(
            self.ablation,
            corrupted_tokens=data.corrupted,
            reference_tokens=data.reference if data.reference is not None else data.corrupted,
            like=data.clean,
            attention_mask=data.attention_mask,
            reference_mask=data.reference_mask if data.reference is not None else data.attention_mask,
        )

    @cached_property
    def full_logits(self) -> torch.Tensor:
        """The unmasked model's logits on the clean input (one forward)."""
        self.computed.append("full_logits")
        with torch.no_grad():
            return self.runtime.run(self.data.clean, self.data.attention_mask)
