"""ACDC, Automatic Circuit DisCovery (Conmy et al. 2023, NeurIPS, Sec. 3 and Algorithm 1).

Greedy edge pruning from the full graph, run once per tau of a grid:

- Order. Destinations in ACDC's reverse topological order: `logits`, then for each layer
  from the last, its MLP input, then its heads' `<v>`, `<k>` and `<q>` inputs (heads from
  the last to the first within each letter), as ACDC's reversed hook order visits them.
  The incoming edges of a destination are tried from the latest source to the earliest
  (`m{L}`, `a{L}.h{H-1}` .. `a{L}.h0`, ..., `input`), ACDC's parent order
  (`incoming_edges`). The order comes from the graph's indices alone, so it is the same
  in every process and a run's circuits are reproducible. (auto-circuit, at 98db58c,
  sorts its edges only by destination layer, `prune_algos/ACDC.py`, from a Python set,
  `utils/graph_utils.py`; within a layer its order follows string hashes, which change
  between processes, and so can its circuits.) Greedy pruning depends on the order: two
  implementations agree edge for edge only where they visit edges in the same order.
- Rule. Removing an edge means mask 0 (it falls back to the run's ablation). With b(C) the
  objective of circuit C (lower is better), edge e is removed for good when
  b(C - e) - b(C) < tau, strictly, where C is the *current* circuit (the full graph minus
  every removal accepted so far), as in ACDC's code; otherwise it is kept. b is
  `run.kl_to_full` (`acdc_metric=kl`; ACDC's choice) or minus the task metric
  (`acdc_metric=task`; the metric drop). The default, `auto`, is `kl` wherever the outputs
  form a distribution and `task` for a single output logit (tracr-xproportion), whose KL
  is identically zero; there `kl` is an error.
  ACDC's `--abs-value-threshold` variant (off by default there) is not offered.
- Clean-up. As ACDC's `current_node_connected`, a destination whose node (head or MLP)
  has no kept outgoing edge left when it is visited loses all its incoming edges
  untested. Afterwards `prune_dead_ends` drops every edge whose destination node (and so
  its source) has no path to `logits` through kept edges; for tau > 0 the first rule
  already guarantees this. ACDC's optional removal of nodes with no path *from* the input
  (off in its main script, invalid for zero ablation) is not done.
- Scores. The tau grid (option `taus`: a number, a list, or "a,b,c"; default 10^-5 to
  10^0 in half-decade steps, 11 values) gives one circuit per tau; an edge scores the
  largest tau at which it survives, 0 if none, stored in float64 so that a score is its
  grid tau exactly (float32 would round most taus down and `score >= tau` would drop
  edges that survive at tau). `scores >= tau` is the union of the
  circuits at taus >= tau: that is circuit(tau) exactly when the circuits are nested,
  which greedy pruning does not guarantee. `AcdcSweep.nested` says whether they are, and
  a warning is given when they are not.
- Speed (option `batched`, default 1; 0 is the reference: one masked forward of the whole
  model per tried edge, each tau on its own). Three things, none of which changes a
  decision:
  - Incremental evaluation (`bench.incremental`). Every edge upstream of the destination
    being pruned is still kept (those are visited later), and the current circuit's inputs
    and outputs are cached; a candidate recomputes only the nodes its change reaches
    through kept edges (the touched heads of a layer, not all of them), and with the KL
    the last MLP and the unembedding run at the task's output positions only.
  - Speculation. Candidates are decided in sequences: `logits`, each MLP, and all head
    inputs of one layer together (`destination_groups`; no head feeds another head of its
    layer, so whether a head is cut off is known when its layer starts). The removals of
    a sequence's next candidates are evaluated in one batched forward, each mask also
    holding the removals predicted for the candidates before it. A prediction is the
    latest change measured for the same source (any destination, any tau); sources not yet
    measured follow the branch's majority decision so far. Walking the candidates in
    order, every decision reads a value computed on exactly the current circuit, so
    decisions equal the reference's up to float rounding between the two computations
    (in float32 a tau within the KL's rounding, 1e-5 or 3e-5 on the speed benchmark's model,
    can see a near-tie decided the other way and greedy pruning take another path; run the
    model in float64 where that matters). After the first wrong prediction the rest of
    the batch is stale and is evaluated again. How many candidates a forward tries
    (`next_window`, at most `acdc_window`) trades the fixed cost of a forward against the
    masks that a misprediction wastes, from the misprediction rate so far and the work a
    mask took at that layer last time.
  - A shared tau grid. Taus with the same circuit so far are one branch, split at the
    first edge whose change falls between them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from bench.discovery import DiscoveryRun, EdgeScores
from bench.graph import Graph
from bench.incremental import CircuitState, Evaluation, IncrementalRuntime
from methods.exact_patching import masks_per_forward
from methods.spec import register_method, whole_number

DEFAULT_TAUS: tuple[float, ...] = tuple(10.0 ** (k / 2) for k in range(-10, 1))
DEFAULT_WINDOW = 64
# The fixed cost of one forward (Python, module calls, kernel launches) in units of its
# per-mask work (one node, a head, an MLP or the unembedding, computed for one token), and
# the most tokens worth stacking in one forward. They set only the batching
# (`_Acdc.next_window`), never a decision. Tuned on the speed benchmark's model at 1 x 8,
# 2 x 8 and 8 x 16 tokens, one tau and the grid (overhead 400, 800 or 1600, cap 1024 or
# 4096): the fastest or within 10% of the fastest in each case but one (one tau at 2 x 8:
# 0.28 s against 0.23 s, within this machine's noise). On CPU one incremental forward
# costs about 1 ms before its masks' work.
FORWARD_OVERHEAD_WORK = 800
MAX_FORWARD_TOKENS = 1024
METRICS = ("auto", "kl", "task")
DEFAULTS: dict[str, object] = {
    "taus": list(DEFAULT_TAUS),
    "acdc_metric": "auto",
    "batched": 1,
    "acdc_window": DEFAULT_WINDOW,
}


@dataclass(frozen=True)
class AcdcSweep:
    """ACDC's circuits over a tau grid.

    Attributes:
        taus: the grid, ascending.
        circuits: `[n_taus, n_edges]` bool, the kept edges at each tau.
        forwards: masked forward passes run.
        masks: masks evaluated (a batched forward evaluates several).
        node_tokens: nodes computed (heads, MLPs, the unembedding) x tokens, summed over the
            masks: what the sweep computed, whatever the batching. Its ratio between two
            engines bounds the speed-up one can give where the machine is compute bound.
    """

    taus: tuple[float, ...]
    circuits: torch.Tensor
    forwards: int
    masks: int
    node_tokens: int = 0

    @property
    def scores(self) -> torch.Tensor:
        """Largest tau at which each edge survives (0 if it never does), in float64: each
        score is a grid tau exactly, so `scores >= tau` in Python floats loses no edge that
        survives at tau (float32 rounds 10^-0.5 and other taus down)."""
        taus = torch.tensor([0.0, *self.taus], dtype=torch.float64)
        return taus[(self.circuits * torch.arange(1, len(self.taus) + 1)[:, None]).amax(0)]

    @property
    def nested(self) -> bool:
        """Whether each circuit contains the circuits at every larger tau."""
        return bool((self.circuits[1:] <= self.circuits[:-1]).all())


@dataclass(frozen=True)
class _Branch:
    """Tau-grid indices whose runs have the same circuit so far, and that circuit's state."""

    taus: tuple[int, ...]
    state: CircuitState


class _FullForwards:
    """The reference evaluator: one masked forward from the embedding per circuit."""

    def __init__(self, run: DiscoveryRun, badness: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.run, self.badness = run, badness
        self.work_per_mask = full_model_node_tokens(run)

    def _values(self, masks: torch.Tensor) -> list[float]:
        matrices = self.run.graph.to_matrix(masks.to(self.run.runtime.model.cfg.dtype))
        return self.badness(self.run.runtime.forward(self.run.data.clean, matrices, self.run.ablated)).tolist()

    def initial(self) -> CircuitState:
        full = torch.ones(self.run.graph.n_edges, dtype=torch.bool)
        return CircuitState(full, (), (), self._values(full[None])[0])

    def evaluate(self, state: CircuitState, masks: torch.Tensor, layer: int) -> Evaluation:
        return Evaluation(state, masks, self._values(masks), {}, {}, self.work_per_mask)


def full_model_node_tokens(run: DiscoveryRun) -> int:
    """A whole forward's work in `AcdcSweep.node_tokens` units: every head, MLP and the
    unembedding at every token."""
    spec = run.graph.spec
    return (spec.n_layers * spec.n_heads + len(run.graph.mlp_dst) + 1) * run.data.clean.numel()


def destination_order(graph: Graph) -> list[int]:
    """ACDC's visiting order: logits, then per layer from the last: MLP, then v, k, q inputs."""
    order = [graph.logits_dst]
    n_heads = graph.spec.n_heads
    for layer in reversed(range(graph.spec.n_layers)):
        if layer in graph.mlp_dst:
            order.append(graph.mlp_dst[layer])
        first = graph.layer_head_dst[layer].start
        order += [first + 3 * head + letter for letter in (2, 1, 0) for head in reversed(range(n_heads))]
    return order


def destination_groups(graph: Graph) -> list[list[int]]:
    """`destination_order` cut into runs whose cut-off checks depend only on earlier runs:
    `logits`, then per layer its MLP, then all its heads' inputs. A head's outgoing edges
    go to its layer's MLP and to later layers, never to another head of its layer, so every
    head input of a layer can be decided in one sequence of candidates."""
    head_layer = {d: layer for layer, heads in enumerate(graph.layer_head_dst) for d in range(heads.start, heads.stop)}
    groups: list[list[int]] = []
    for dst in destination_order(graph):
        if groups and dst in head_layer and head_layer.get(groups[-1][-1]) == head_layer[dst]:
            groups[-1].append(dst)
        else:
            groups.append([dst])
    return groups


def incoming_edges(graph: Graph, dst: int) -> torch.Tensor:
    """The edges into destination `dst` in the order ACDC tries them: the latest source
    first (ACDC's parent order), fixed by the graph's indices."""
    return torch.nonzero(graph.edge_dst == dst).flatten().flip(0)


def _destination_sources(graph: Graph) -> torch.Tensor:
    """The source index of each destination's node, -1 for logits."""
    return torch.tensor([graph.src_index.get(graph.destination_node(d), -1) for d in graph.destinations])


def destination_layers(graph: Graph) -> list[int]:
    """The first block whose nodes a change at each destination can affect (logits: none,
    `n_layers`)."""
    layers = [graph.spec.n_layers] * graph.n_destinations
    for layer in range(graph.spec.n_layers):
        for dst in range(graph.layer_head_dst[layer].start, graph.layer_head_dst[layer].stop):
            layers[dst] = layer
        if layer in graph.mlp_dst:
            layers[graph.mlp_dst[layer]] = layer
    return layers


def prune_dead_ends(graph: Graph, kept: torch.Tensor) -> torch.Tensor:
    """Drop edges whose destination node has no path to `logits` through kept edges.

    Args:
        kept: `[..., n_edges]` bool.

    Returns:
        A copy of `kept` without those edges (their sources then reach `logits` too).
    """
    kept = kept.clone()
    dst_source = _destination_sources(graph)
    live = (dst_source == -1).expand(*kept.shape[:-1], -1).clone()  # per destination
    for src in reversed(range(graph.n_sources)):
        out = graph.edge_src == src
        reaches = (kept[..., out] & live[..., graph.edge_dst[out]]).any(-1)
        live[..., dst_source == src] = reaches[..., None]
    return kept & live[..., graph.edge_dst]


class _Acdc:
    """One ACDC sweep: branches of tau runs visiting destinations in ACDC's order."""

    def __init__(
        self, run: DiscoveryRun, engine: IncrementalRuntime | _FullForwards, taus: Sequence[float], window: int
    ) -> None:
        graph = self.graph = run.graph
        self.run, self.engine, self.taus, self.window = run, engine, taus, window
        self.forwards = self.masks = self.node_tokens = 0
        self.incoming = [incoming_edges(graph, d) for d in range(graph.n_destinations)]
        self.outgoing = [torch.nonzero(graph.edge_src == s).flatten() for s in range(graph.n_sources)]
        self.dst_source = _destination_sources(graph).tolist()
        self.layer = destination_layers(graph)
        self.visited = torch.zeros(graph.n_edges, dtype=torch.bool)  # edges of visited destinations
        self.last_change = torch.full((graph.n_sources,), math.nan, dtype=torch.float64)
        self.tokens_per_mask = run.data.clean.numel()
        self.decided = self.mispredicted = 0  # speculation's record so far, for `next_window`
        # Work per mask of a forward at each layer: the last one measured there, else that
        # of recomputing every node from the layer on.
        nodes_from = {layer: (graph.spec.n_layers - layer) * (graph.spec.n_heads + 1) + 1 for layer in set(self.layer)}
        self.work = {layer: self.tokens_per_mask * nodes for layer, nodes in nodes_from.items()}

    def next_window(self, layer: int) -> int:
        """How many candidates the next speculative forward at `layer` should try: the count
        that maximises the expected decisions per unit of cost. A window of n with
        misprediction rate p decides (1 - (1-p)^n) / p candidates on average, and costs a
        fixed overhead (`FORWARD_OVERHEAD_WORK`) plus n masks of the work a mask took at this
        layer last time. Deterministic: p and the work are counted, not timed."""
        p = (self.mispredicted + 1) / (self.decided + 2)
        largest = max(1, min(self.window, MAX_FORWARD_TOKENS // self.tokens_per_mask))
        sizes = torch.arange(1, largest + 1, dtype=torch.float64)
        decided = (1 - (1 - p) ** sizes) / p
        cost = FORWARD_OVERHEAD_WORK + max(1, self.work[layer]) * sizes
        return int(torch.argmax(decided / cost)) + 1

    def predict(self, cand: torch.Tensor, removing: bool) -> torch.Tensor:
        """Predicted change in b(C) of removing each of `cand`: the latest change measured for
        its source, else -inf (remove) or +inf (keep) as most of the branch's decisions so far."""
        guess = self.last_change[self.graph.edge_src[cand]]
        return torch.where(guess.isnan(), -math.inf if removing else math.inf, guess)

    def speculate(self, br: _Branch, dst: int, cand: torch.Tensor, removing: bool) -> tuple[list[bool], Evaluation]:
        """Evaluate removing each of `cand` on top of the removals predicted before it, in one
        forward; the changes measured along that path become the next predictions."""
        predicted = self.predict(cand, removing) < self.taus[br.taus[len(br.taus) // 2]]
        n = len(cand)
        masks = br.state.kept.expand(n, -1).clone()
        masks[:, cand] &= ~(torch.tril(predicted.expand(n, n), diagonal=-1) | torch.eye(n, dtype=torch.bool))
        result = self.engine.evaluate(br.state, masks, self.layer[dst])
        self.work[self.layer[dst]] = result.work
        self.forwards += 1
        self.masks += n
        self.node_tokens += result.work * n
        changes = torch.empty(n, dtype=torch.float64)
        before = br.state.value  # b of the predicted circuit so far
        for row, remove in enumerate(predicted.tolist()):
            changes[row] = result.values[row] - before
            before = result.values[row] if remove else before
        self.last_change[self.graph.edge_src[cand]] = changes
        return predicted.tolist(), result

    def visit(self, branch: _Branch, dsts: list[int]) -> list[_Branch]:
        """Decide the incoming edges of the destinations `dsts` (one of `destination_groups`)
        for every tau of `branch`, as one sequence of candidates in ACDC's order."""
        kept = branch.state.kept
        live = [d for d in dsts if self.dst_source[d] < 0 or kept[self.outgoing[self.dst_source[d]]].any()]
        if len(live) < len(dsts):  # cut off from the output: inputs go untested, b(C) is unchanged
            dead = torch.cat([self.incoming[d] for d in dsts if d not in live])
            branch = _Branch(branch.taus, branch.state.without_unread(dead))
        if not live:
            return [branch]
        cand = torch.cat([self.incoming[d] for d in live])
        dst = live[0]  # every destination of a group is in the same layer
        removing = bool((~kept[self.visited]).sum() * 2 > self.visited.sum())
        done, todo = [], [(branch, 0)]
        while todo:
            br, start = todo.pop()
            while start < len(cand):
                stop = min(len(cand), start + self.next_window(self.layer[dst]))
                predicted, result = self.speculate(br, dst, cand[start:stop], removing)
                self.decided += stop - start
                for row, remove in enumerate(predicted):
                    change = result.values[row] - br.state.value  # exact: br is the predicted circuit so far
                    drop = tuple(t for t in br.taus if self.taus[t] > change)
                    keep = tuple(t for t in br.taus if self.taus[t] <= change)
                    removal = _Branch(drop, result.state(row)) if drop else None
                    stay = _Branch(keep, br.state) if keep else None
                    follow, other = (removal, stay) if remove else (stay, removal)
                    if follow is None:  # misprediction: the rest of this batch is stale
                        self.decided -= stop - start - row - 1
                        self.mispredicted += 1
                        br, start = other, start + row + 1
                        break
                    if other is not None:  # the taus split: the other part goes on later
                        todo.append((other, start + row + 1))
                    br = follow
                else:
                    start = stop
            done.append(br)
        return done

    def sweep(self, shared: bool, progress: bool) -> AcdcSweep:
        graph = self.graph
        full = self.engine.initial()
        self.forwards += 1
        self.masks += 1
        self.node_tokens += full_model_node_tokens(self.run)  # the full circuit, computed whole
        groups = [tuple(range(len(self.taus)))] if shared else [(k,) for k in range(len(self.taus))]
        branches = [_Branch(taus, full) for taus in groups]
        groups = destination_groups(graph)
        for dsts in tqdm(groups, desc="acdc", unit="group", leave=False, disable=not progress):
            branches = [new for branch in branches for new in self.visit(branch, dsts)]
            for dst in dsts:
                self.visited[self.incoming[dst]] = True
        circuits = torch.zeros(len(self.taus), graph.n_edges, dtype=torch.bool)
        for branch in branches:
            circuits[list(branch.taus)] = branch.state.kept
        return AcdcSweep(
            tuple(self.taus), prune_dead_ends(graph, circuits), self.forwards, self.masks, self.node_tokens
        )


def parse_taus(value: object) -> tuple[float, ...]:
    """A tau grid from an option: a number, a sequence, or a comma-separated string; sorted."""
    error = ValueError(f"taus must be distinct finite numbers, got {value!r}")
    if isinstance(value, str):
        items: object = [part for part in value.split(",") if part.strip()]
    else:
        items = [value] if isinstance(value, int | float) else value
    try:
        taus = sorted(float(t) for t in items)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise error from None
    if not taus or not all(math.isfinite(t) for t in taus) or len(set(taus)) != len(taus):
        raise error
    return tuple(taus)


def acdc_sweep(
    run: DiscoveryRun,
    taus: Sequence[float] = DEFAULT_TAUS,
    metric: str = "auto",
    batched: bool = True,
    window: int = DEFAULT_WINDOW,
    progress: bool = False,
) -> AcdcSweep:
    """Run ACDC at every tau of `taus` (see the module docstring for every choice).

    Args:
        run: the discovery run (model, data, ablation).
        taus: thresholds; sorted ascending in the result.
        metric: "kl" (KL to the full model), "task" (drop in the task metric) or "auto"
            ("kl" unless the model has a single output logit).
        batched: speculative batched evaluation and a shared tau sweep; False runs one
            masked forward per tried edge and each tau on its own.
        window: most candidates evaluated in one batched forward (also capped by
            `run.max_batch_tokens`).

    Returns:
        The circuits at each tau (after `prune_dead_ends`) and the work it took.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown acdc_metric {metric!r}; valid choices: {', '.join(METRICS)}")
    if metric == "auto":
        metric = "kl" if run.has_distribution else "task"
    if metric == "kl" and not run.has_distribution:
        raise ValueError("acdc_metric=kl: the KL of a single output logit is always 0; use acdc_metric=task")
    if window < 1:
        raise ValueError(f"acdc_window must be a positive integer, got {window}")

    def metric_drop(logits: torch.Tensor) -> torch.Tensor:
        return -run.objective(logits)

    with torch.no_grad():
        if batched:
            engine: IncrementalRuntime | _FullForwards = IncrementalRuntime(
                run.runtime,
                run.data.clean,
                run.ablated,
                run.kl_at_outputs if metric == "kl" else metric_drop,
                run.data.output_positions if metric == "kl" else None,
            )
        else:
            engine = _FullForwards(run, run.kl_to_full if metric == "kl" else metric_drop)
        window = min(window, masks_per_forward(run)) if batched else 1
        return _Acdc(run, engine, parse_taus(taus), window).sweep(shared=batched, progress=progress)


def parse_options(options: dict[str, object]) -> dict[str, object]:
    """ACDC's options (`DEFAULTS` keys) as `acdc_sweep` arguments; a bad value is a one-line
    error. Also the method's `check`, so it runs before any work."""
    if options["acdc_metric"] not in METRICS:
        raise ValueError(f"unknown acdc_metric {options['acdc_metric']!r}; valid choices: {', '.join(METRICS)}")
    batched = str(options["batched"]).lower()
    if batched not in ("0", "1", "false", "true", "no", "yes"):
        raise ValueError(f"batched must be 0 or 1, got {options['batched']!r}")
    try:
        window = whole_number(options["acdc_window"])
    except ValueError:
        window = 0
    if window < 1:
        raise ValueError(f"acdc_window must be a positive integer, got {options['acdc_window']!r}")
    return {
        "taus": parse_taus(options["taus"]),
        "metric": str(options["acdc_metric"]),
        "batched": batched in ("1", "true", "yes"),
        "window": window,
    }


@register_method(
    "acdc",
    description="ACDC: greedy edge pruning in reverse topological order; score = largest tau kept",
    citation="Conmy et al. 2023, Towards Automated Circuit Discovery, NeurIPS, Sec. 3 / Alg. 1",
    defaults=DEFAULTS,
    check=parse_options,
)
def acdc(run: DiscoveryRun) -> EdgeScores:
    """ACDC over the tau grid; options as in `DEFAULTS` (see the module docstring)."""
    result = acdc_sweep(run, **parse_options({**DEFAULTS, **run.options}), progress=True)  # type: ignore[arg-type]
    if not result.nested:
        warnings.warn(
            "ACDC circuits are not nested over the tau grid: scores >= tau is the union of the "
            "circuits at taus >= tau, a superset of circuit(tau) for some taus",
            stacklevel=2,
        )
    return EdgeScores(result.scores)
