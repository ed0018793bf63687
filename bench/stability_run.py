"""Measuring one run request's stability (`bench.stability`) and writing it beside the results."""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np

from bench.bootstrap_count import check_bootstrap
from bench.runner import IncompatibleChoice, RunRequest
from bench.stability import Stability, bootstrap_indices, circuit_size, measure


def measure_stability(
    request: RunRequest,
    bootstrap: int,
    progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> Stability:
    """Rerun `request`'s method on `bootstrap` resamples (and seeds, if stochastic); `progress`
    gets one line per rerun.

    Raises:
        IncompatibleChoice: fewer than two reruns, or a bad request (before any work).
    """
    from bench.discovery import prepare_run
    from bench.faithful_size import faithful_sizes
    from bench.ground_truth import GROUND_TRUTH_DIR, has_ground_truth, load_ground_truth
    from bench.runtime import MaskedRuntime
    from bench.scoring import faithfulness
    from bench.zoo import load_model
    from methods import METHODS

    try:
        check_bootstrap(bootstrap)
    except ValueError as err:
        raise IncompatibleChoice(f"--bootstrap {err}") from None
    key = request.resolve()
    task = request.find_task()
    spec = METHODS.get(key.method)
    options = spec.resolve_options(request.options)
    model = load_model(key.model, seed=key.seed, device=request.device)
    runtime = MaskedRuntime(model)
    data = task.build(model, key.n_examples, key.data_seed)

    def score(examples, seed: int) -> np.ndarray:
        return spec.func(prepare_run(runtime, examples, key.ablation, seed, options)).values.double().numpy()

    truth_size = None
    root = task.ground_truth_dir() if task.ground_truth_dir is not None else GROUND_TRUTH_DIR
    if has_ground_truth(key.task, key.model, root):
        truth = load_ground_truth(key.task, runtime.graph, root)
        truth_size = len(truth.detectable.get(key.ablation, truth.edges))
    faithful = None
    if truth_size is None:
        full = prepare_run(runtime, data, key.ablation, key.seed, options)
        scores = spec.func(full)
        faithful = faithful_sizes(full, scores, faithfulness(full, scores, seed=key.seed), thresholds=(0.9,))[0].edges
    k, rule = circuit_size(runtime.graph.n_edges, truth_size, faithful)
    resamples = bootstrap_indices(data.n_examples, bootstrap, key.seed)
    seeds = [key.seed + i for i in range(bootstrap)] if spec.stochastic else None
    (jaccard, spearman), seeded, margin = measure(score, data, resamples, seeds, k, key.seed, progress)
    return Stability(
        method=key.method,
        task=key.task,
        model=key.model,
        ablation=key.ablation,
        n_examples=data.n_examples,
        bootstrap=bootstrap,
        seed=key.seed,
        k=k,
        k_rule=rule,
        jaccard=jaccard,
        spearman=spearman,
        seeds_jaccard=seeded[0] if seeded else None,
        seeds_spearman=seeded[1] if seeded else None,
        top_k_margin=margin,
        data_seed=key.data_seed,
        options_hash=key.options_hash,
        variant=request.variant(),
    )
