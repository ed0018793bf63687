"""A seeded, resumable training loop shared by every trained model.

Reproducibility: one thread, a fixed init seed, and a dedicated generator for all data
sampling whose state is checkpointed with the weights and the optimizer, so a run
interrupted after k steps and resumed ends with exactly the weights of an uninterrupted one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from bench.zoo.trained import cache

StepFn = Callable[[torch.Generator], dict[str, torch.Tensor]]
"""One training step's losses (summed for the update), drawing its data from the generator."""


@dataclass
class TrainResult:
    curves: dict[str, list[float]] = field(default_factory=lambda: {"step": []})
    seconds: float = 0.0
    resumed_from: int = 0


@contextmanager
def single_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train(
    name: str,
    model: torch.nn.Module,
    step_fn: StepFn,
    *,
    steps: int,
    lr: float,
    seed: int,
    checkpoint_every: int = 250,
    log_every: int = 25,
    stop_after: int | None = None,
) -> TrainResult:
    """Train `model` in place with AdamW for `steps` steps, resuming from a checkpoint in
    the model's cache directory if one exists.

    Args:
        stop_after: stop (with a checkpoint) once this many steps are done, as an interrupt
            would; for testing resume.
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 100))
    gen = torch.Generator().manual_seed(seed + 1)
    result = TrainResult()
    start = 0
    sums: dict[str, float] = {}  # losses summed since the last logged step
    saved = cache.load_checkpoint(name)
    if saved is not None and saved["steps"] == steps:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        gen.set_state(saved["generator"])
        result.curves, result.seconds, start = saved["curves"], saved["seconds"], saved["step"]
        sums = saved["sums"]
        result.resumed_from = start

    def checkpoint(step: int) -> None:
        state = {
            "step": step,
            "steps": steps,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "generator": gen.get_state(),
            "curves": result.curves,
            "sums": sums,
            "seconds": result.seconds,
        }
        cache.save_checkpoint(name, state)

    model.train()
    t0 = time.perf_counter()
    step = start
    bar = tqdm(total=steps, initial=start, desc=f"training {name}", unit="step", leave=False)
    try:
        with single_thread():
            while step < steps:
                losses = step_fn(gen)
                optimizer.zero_grad(set_to_none=True)
                sum(losses.values()).backward()
                optimizer.step()
                schedule.step()
                step += 1
                for key, value in losses.items():
                    sums[key] = sums.get(key, 0.0) + float(value.detach())
                if step % log_every == 0:
                    result.curves["step"].append(step)
                    for key, total in sums.items():
                        result.curves.setdefault(key, []).append(total / log_every)
                    bar.set_postfix({k: f"{v / log_every:.3g}" for k, v in sums.items()})
                    sums = {}
                bar.update(1)
                if step % checkpoint_every == 0 or step == stop_after:
                    result.seconds += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    checkpoint(step)
                if step == stop_after:
                    break
    except KeyboardInterrupt:
        bar.close()
        print(f"\ninterrupted at step {step}; rerun to resume from step {step - step % checkpoint_every}")
        raise
    bar.close()
    result.seconds += time.perf_counter() - t0
    model.eval()
    return result
