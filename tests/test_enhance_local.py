"""The enhancer's local backend end to end: a tiny random causal LM (transformers' Qwen2 classes
and a byte-level BPE tokenizer with a chat template, built here from a config) answers through the
chat template, batched; its answers are noise, so every line fails the check and is reported."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import edit, stage_error
from typer.testing import CliRunner

from worldr1.enhance.cache import LineCache
from worldr1.enhance.check import Bounds
from worldr1.enhance.enhancer import Job, enhance
from worldr1.enhance.local import LocalChat
from worldr1.prompts.camera import Primitive

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    folder = tmp_path_factory.mktemp("tiny-lm")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<|im_start|>", "<|im_end|>", "<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(["Camera push in. A red barn in a wheat field under a blue sky."] * 8, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


JOBS = [
    Job("mine.txt", 1, "a red barn in a wheat field", (Primitive.PUSH_IN,)),
    Job("mine.txt", 2, "a lighthouse on a cliff", (Primitive.ORBIT_LEFT, Primitive.PULL_OUT)),
    Job("mine.txt", 3, "a quiet library", (Primitive.FIXED,)),
]


def test_a_tiny_lm_answers_in_batches_and_fails_the_check(tiny_lm: Path) -> None:
    chat = LocalChat(str(tiny_lm), temperature=0.9, max_new_tokens=24, batch=2)
    cache = LineCache()
    run = enhance(JOBS, chat, Bounds(520, 740), 2, cache, seed=0)
    assert run.calls == 6 and run.pass_at == {}
    for o in run.outcomes:
        assert o.status == "failed" and o.output is None and o.attempts == 2
        assert o.reason is not None and o.reason.startswith(("the first sentence must be", "the answer was empty"))
    assert {e.status for e in cache.entries.values()} == {"failed"} and len(cache.entries) == 3
    # The same lines again are answered by the cache: the model is not even loaded.
    fresh = LocalChat(str(tiny_lm), temperature=0.9, max_new_tokens=24, batch=2)
    assert enhance(JOBS, fresh, Bounds(520, 740), 2, LineCache(cache.entries), seed=0).calls == 0
    assert fresh._loaded is None and fresh.identity == chat.identity


def test_the_stage_reports_every_failed_line_and_the_prompts_stage_says_why(project: Path, tiny_lm: Path) -> None:
    import sys

    from helpers import run

    (project / "data/sources/mine.txt").write_text("a red barn in a wheat field\na lighthouse on a cliff\n")
    edit(
        project,
        {
            "prompts.enhance.sources": [{"path": "data/sources/mine.txt", "split": "train"}],
            "prompts.enhance.model": str(tiny_lm),
            "prompts.enhance.max_new_tokens": 16,
            "prompts.enhance.attempts": 2,
        },
    )
    proc = run([sys.executable, "stages/enhance.py"], project)
    assert "2 lines of 1 source: 0 kept, 2 failed" in proc.stderr
    assert (project / "data/prompts/enhanced/mine.txt").read_text() == ""
    rows = pq.read_table(project / "data/prompts/enhanced/enhanced.parquet").to_pylist()
    assert [(r["status"], r["attempts"], r["cached"]) for r in rows] == [("failed", 2, False)] * 2
    assert rows[0]["model"].startswith(f"local:{tiny_lm}@")
    report = json.loads((project / "reports/enhance.json").read_text())
    assert report["check_pass_rate"] == 0.0 and report["failed"] == 2 and len(report["failures"]) == 2
    line = stage_error(project, ["stages/prompts.py"])
    assert "no line of data/sources/mine.txt passed the enhance stage's check" in line


def test_worldr1_enhance_prints_why_no_answer_passed(tiny_lm: Path) -> None:
    from worldr1.cli import app

    result = CliRunner().invoke(
        app, ["enhance", "a red barn", "--model", str(tiny_lm), "--moves", "orbit left, then pull out"]
    )
    assert result.exit_code == 1
    assert "no answer passed the check in 4 attempts; the last:" in result.output
