"""`rlt model tiny`: a small Qwen2-style causal LM with a locally trained BPE tokenizer.

Output: a checkpoint artifact (HF model dir: safetensors, tokenizer, ChatML chat
template, generation config, `.rlt/manifest.json`). No network is used.

    rlt model tiny --out models/tiny-teacher --seed 0
    rlt model tiny --out models/tiny-student --seed 1 --tokenizer models/tiny-teacher
    rlt model tiny --out models/tiny-mine --corpus data/mine vocab_size=2000

The tokenizer is byte-level BPE trained on the synthetic task's corpus (or, with
`--corpus`, on the text of a dataset: its CORPUS_COLUMNS) with
Qwen2's own normalizer and pre-tokenizer (transformers swaps Qwen2's in when it
loads a `qwen2` directory, so training with any other would break merges). The
RLT tags are added tokens that are *not* special, one token each, so decoding
with `skip_special_tokens=True` keeps them as it does for real models.
`tag_tokens=False` leaves them out: tags are then multi-token plain text.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from stages.artifacts.read import read_table
from stages.artifacts.stage import run_stage
from stages.config import at_least, check_config, opt
from stages.errors import UserError
from stages.method import tasks
from stages.method.settings import STUDENT_SYSTEM, TEACHER_SYSTEM
from stages.method.views import TAGS

log = logging.getLogger(__name__)

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)
PAD, BOS_IM, EOS_IM = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
CORPUS_COLUMNS = ("question", "reasoning_trace", "solution", "explanation")  # the text a model will read and write


@dataclass
class TinyModelConfig:
    """Options of `rlt model tiny`."""

    out: str = opt("", "Output checkpoint directory.", hash=False, flag=True, required=True)
    seed: int = opt(0, "Seed of the weight initialisation.", flag=True)
    hidden: int = opt(128, "Hidden size.", flag=True, check=at_least(1))
    layers: int = opt(2, "Number of decoder layers.", flag=True, check=at_least(1))
    heads: int = opt(4, "Attention heads.", check=at_least(1))
    kv_heads: int = opt(2, "Key/value heads (grouped-query attention).", check=at_least(1))
    intermediate: int = opt(512, "MLP inner size.", check=at_least(1))
    vocab_size: int = opt(400, "Target BPE vocabulary size (before added tokens).", check=at_least(1))
    max_positions: int = opt(4096, "Maximum sequence length.", check=at_least(1))
    tokenizer: str | None = opt(None, "Reuse the tokenizer of this directory instead of training one.", flag=True, input=True)
    corpus: str | None = opt(None, "Train the tokenizer on this dataset's text (its question, reasoning_trace, "
                                   "solution and explanation columns; an artifact or a Parquet/JSONL/CSV file) "
                                   "instead of the synthetic task's; raise vocab_size for a large one.",
                             flag=True, input=True)
    tag_tokens: bool = opt(True, "Add the RLT tags as single non-special tokens.", flag="--tag-tokens/--plain-tags")
    force: bool = opt(False, "Overwrite an existing output.", hash=False, flag=True)


def corpus_text(path: str) -> list[str]:
    """The texts of a dataset's CORPUS_COLUMNS (every non-empty cell); UserError when it has none of them."""
    table = read_table(path)
    columns = [c for c in CORPUS_COLUMNS if c in table.column_names]
    if not columns:
        raise UserError(f"--corpus {path}: no text to train a tokenizer on: it needs a column of "
                        f"{', '.join(CORPUS_COLUMNS)} (has: {', '.join(table.column_names) or 'none'})")
    text = [str(v) for c in columns for v in table.column(c).to_pylist() if v not in (None, "")]
    if not text:
        raise UserError(f"--corpus {path}: its {', '.join(columns)} columns are empty")
    return text


def train_tokenizer(vocab_size: int, tag_tokens: bool = True, corpus: list[str] | None = None):
    """Train byte-level BPE with Qwen2's pre-tokenizer on `corpus` (default: the synthetic task's) ->
    Qwen2Tokenizer. Any text still encodes (byte-level); text like the corpus in fewer tokens."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import AddedToken
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX, Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    text = (corpus or tasks.corpus()) + [TEACHER_SYSTEM, STUDENT_SYSTEM, "system", "user", "assistant"] * 50
    bpe.train_from_iterator(text, trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tok = Qwen2Tokenizer(vocab=model["vocab"], merges=merges, unk_token=None,
                         eos_token=EOS_IM, pad_token=PAD)
    tok.add_special_tokens({"additional_special_tokens": [BOS_IM, EOS_IM]})
    if tag_tokens:
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAGS])
    tok.chat_template = CHAT_TEMPLATE
    return tok


def load_tokenizer_dir(path: str):
    from transformers import AutoTokenizer

    if not (Path(path) / "tokenizer_config.json").is_file():
        raise UserError(f"--tokenizer {path}: no tokenizer_config.json there")
    return AutoTokenizer.from_pretrained(path)


def build(cfg: TinyModelConfig):
    """The untrained model and its tokenizer."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tok = load_tokenizer_dir(cfg.tokenizer) if cfg.tokenizer else \
        train_tokenizer(cfg.vocab_size, cfg.tag_tokens, corpus_text(cfg.corpus) if cfg.corpus else None)
    torch.manual_seed(cfg.seed)
    conf = Qwen2Config(
        vocab_size=len(tok), hidden_size=cfg.hidden, intermediate_size=cfg.intermediate,
        num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.kv_heads, max_position_embeddings=cfg.max_positions,
        tie_word_embeddings=True, pad_token_id=tok.pad_token_id,
        eos_token_id=tok.convert_tokens_to_ids(EOS_IM), bos_token_id=None,
    )
    model = Qwen2ForCausalLM(conf)
    model.generation_config = GenerationConfig(
        eos_token_id=conf.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None)
    return model, tok


def run(cfg: TinyModelConfig) -> Path:
    """Build and save the tiny model as a checkpoint artifact."""
    check_config(cfg)
    if cfg.hidden % cfg.heads or cfg.heads % cfg.kv_heads:
        raise UserError(f"hidden ({cfg.hidden}) must divide by heads ({cfg.heads}), heads by kv_heads ({cfg.kv_heads})")
    if cfg.corpus and cfg.tokenizer:
        raise UserError("--corpus trains a tokenizer and --tokenizer reuses one: give one of them")
    if cfg.corpus and not Path(cfg.corpus).exists():
        raise UserError(f"--corpus {cfg.corpus}: input not found")

    def write(w) -> None:
        model, tok = build(cfg)
        model.save_pretrained(w.out, safe_serialization=True)
        tok.save_pretrained(w.out)
        n = sum(p.numel() for p in model.parameters())
        w.finish({"parameters": n, "vocab": len(tok),
                  "tokenizer_from": cfg.tokenizer or ("corpus" if cfg.corpus else "synthetic task")}, rows=0)
        log.info("tiny model: %d parameters, vocabulary %d -> %s", n, len(tok), w.out)

    return run_stage(cfg, "checkpoint", write)
