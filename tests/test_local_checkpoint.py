"""A user's own model: a GPT-2 checkpoint written by `save_pretrained` loads offline, computes
what Hugging Face computes, and runs a JSONL task end to end through the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from bench.graph import Graph, GraphSpec
from bench.provenance import weights_sha256
from bench.zoo import ModelUnavailable, load_model, model_graph
from bench.zoo.local import is_checkpoint_dir, load_checkpoint, local_model_name, use_model
from tests.test_jsonl_task import ROWS, tokenizer_for, write_jsonl

ROOT = Path(__file__).resolve().parent.parent


def save_tiny_gpt2(directory: Path, seed: int = 0, **config: object) -> GPT2LMHeadModel:
    """A 2-layer, 4-head random GPT-2 and a word-level tokenizer, saved as a user would."""
    tokenizer = tokenizer_for(ROWS)
    fields = {"vocab_size": len(tokenizer), "n_positions": 32, "n_embd": 32, "n_layer": 2, "n_head": 4, **config}
    torch.manual_seed(seed)
    hf_model = GPT2LMHeadModel(GPT2Config(**fields)).eval()
    with torch.no_grad():  # HF initialises biases and LayerNorm to 0 / 1; make them matter
        for name, param in hf_model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                param.add_(0.1 * torch.randn_like(param))
    hf_model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return hf_model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GPT2LMHeadModel]:
    directory = tmp_path_factory.mktemp("my-gpt2")
    return directory, save_tiny_gpt2(directory)


def test_outputs_equal_hugging_face(checkpoint: tuple[Path, GPT2LMHeadModel]) -> None:
    """Log-probabilities equal (the unembedding is centred, as TransformerLens does for hub models,
    which shifts each position's logits by a constant) and so do logit differences."""
    directory, hf_model = checkpoint
    model = load_checkpoint(directory)
    assert model.tokenizer is not None and model.cfg.normalization_type == "LNPre"
    ids = torch.randint(0, hf_model.config.vocab_size, (3, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, theirs = model(ids).double(), hf_model(ids).logits.double()
    assert torch.allclose(ours.log_softmax(-1), theirs.log_softmax(-1), atol=1e-5)
    assert torch.allclose(ours[..., 3] - ours[..., 5], theirs[..., 3] - theirs[..., 5], atol=1e-5)
    assert theirs.std(-1).min() > 0.1  # the outputs are not flat, so the comparison means something


def test_zoo_loads_it_by_path_with_its_graph(checkpoint: tuple[Path, GPT2LMHeadModel]) -> None:
    directory, _ = checkpoint
    assert is_checkpoint_dir(str(directory)) and not is_checkpoint_dir(str(directory / "config.json"))
    name = local_model_name(str(directory))
    assert name.startswith(f"local:{directory.name}@") and len(name.split("@")[1]) == 10
    model = load_model(name)
    assert model.cfg.use_split_qkv_input and model.cfg.use_hook_mlp_in  # the graph's hooks are on
    graph = model_graph(str(directory))
    assert graph.n_edges == Graph(GraphSpec(2, 4, (True, True), False)).n_edges
    assert [n for n in graph.nodes if n.startswith("a")] == [
        f"a{layer}.h{head}" for layer in range(2) for head in range(4)
    ]


def test_other_weights_get_another_name(checkpoint: tuple[Path, GPT2LMHeadModel], tmp_path: Path) -> None:
    directory, _ = checkpoint
    save_tiny_gpt2(tmp_path, seed=1)
    assert local_model_name(str(tmp_path)) != local_model_name(str(directory))


def test_a_model_object_from_python(checkpoint: tuple[Path, GPT2LMHeadModel]) -> None:
    """A Hugging Face model object converts through the same table; the name follows its weights."""
    directory, hf_model = checkpoint
    name = use_model(hf_model, "mine")
    model = load_model(name)
    assert name.startswith("local:mine@") and name.endswith(weights_sha256(model)[:10])
    assert weights_sha256(model) == weights_sha256(load_checkpoint(directory))


def test_unsupported_architecture_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["MambaForCausalLM"], "model_type": "mamba"}))
    with pytest.raises(ModelUnavailable) as caught:
        load_checkpoint(tmp_path)
    message = str(caught.value)
    assert "'MambaForCausalLM' is not supported; valid choices: GPT2LMHeadModel" in message and "\n" not in message


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, cwd=ROOT, env=env)


@pytest.mark.slow  # a subprocess or a measured run: tens of seconds
def test_checkpoint_and_jsonl_run_offline_through_the_cli(
    checkpoint: tuple[Path, GPT2LMHeadModel], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One run as a subprocess (offline), then the suite and a bad request in this process."""
    from bench.cli import main

    directory, _ = checkpoint
    prompts = write_jsonl(tmp_path / "prompts.jsonl", ROWS)
    runs = tmp_path / "runs"
    proc = bench(
        "run", "--method", "eap", "--task", str(prompts), "--model", str(directory),
        "--task-option", "metric=prob-diff", "--results-dir", str(runs),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (path,) = runs.rglob("*.json")
    result = json.loads(path.read_text())
    assert result["key"]["task"].startswith("prompts.jsonl@") and result["key"]["task"].endswith("-prob-diff")
    assert result["model_identity"]["directory"] == str(directory.resolve())
    assert result["model_identity"]["weights_sha256"] == weights_sha256(load_checkpoint(directory))
    assert result["metric"] == "P(answers) - P(distractors) at the last token"
    assert result["n_examples"] == len(ROWS)
    # the whole suite over the file and the checkpoint: the finished run is skipped, the others run
    code = main([
        "run", "--all", "--methods", "eap,random", "--tasks", str(prompts), "--models", str(directory),
        "--task-option", "metric=prob-diff", "--stability", "none", "--results-dir", str(runs),
    ])  # fmt: skip
    assert code == 0
    assert "finished: 3 run, 1 skipped" in capsys.readouterr().out
    # bad input: one line, exit 2, nothing lost
    code = main(["run", "--method", "eap", "--task", str(prompts), "--results-dir", str(runs)])
    assert code == 2 and capsys.readouterr().err.strip().splitlines() == [
        f"error: task {result['key']['task'].removesuffix('-prob-diff')!r} has no model of its own; give one with "
        "--model (any model with a tokenizer)"
    ]
    assert len(list(runs.rglob("*.json"))) == 4
    # the report renders them and names what it could not re-run (a task file is not installed)
    assert main(["report", "--results-dir", str(runs), "--out", str(tmp_path / "report.html")]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "report.html").exists()
    expected = f"for want of: task {result['key']['task']!r} (4 runs)"
    assert "4 of 4 results are rendered from their files but cannot be re-checked here" in out and expected in out


def test_results_record_their_nodes_and_older_files_still_read(
    checkpoint: tuple[Path, GPT2LMHeadModel], tmp_path: Path
) -> None:
    from bench.results import read_result
    from bench.runner import RunRequest, execute

    directory, _ = checkpoint
    prompts = write_jsonl(tmp_path / "prompts.jsonl", ROWS)
    result, path = execute(RunRequest("random", str(prompts), str(directory)), tmp_path / "runs")
    graph = model_graph(str(directory))
    assert result.nodes == graph.nodes and read_result(path).nodes == graph.nodes
    older = json.loads(path.read_text())
    del older["nodes"]  # a file written before nodes were recorded
    path.write_text(json.dumps(older))
    assert read_result(path).nodes is None


def test_text_tasks_accept_any_model_with_a_tokenizer(checkpoint: tuple[Path, GPT2LMHeadModel]) -> None:
    """Built-in text tasks say what they need (a tokenizer), so a user's checkpoint is accepted
    by name; a Tracr task still names its model. The IOI ground truth is GPT-2 small's and
    scores no other model."""
    from bench.ground_truth import has_ground_truth
    from bench.runner import IncompatibleChoice, RunRequest
    from bench.suite import plan_suite

    directory, _ = checkpoint
    key = RunRequest("random", "ioi", str(directory)).resolve()
    assert key.model == local_model_name(str(directory)) and not has_ground_truth("ioi", key.model)
    assert has_ground_truth("ioi", "gpt2")
    with pytest.raises(IncompatibleChoice, match="cannot run on model 'local:"):
        RunRequest("random", "tracr-reverse", str(directory)).resolve()
    planned = {request.task for request in plan_suite(["random"], models=[str(directory)])}
    assert {"ioi", "sva", "greater-than", "docstring"} <= planned and "tracr-reverse" not in planned
    assert "ioi" not in {r.task for r in plan_suite(["random"], models=["tracr-reverse"])}
