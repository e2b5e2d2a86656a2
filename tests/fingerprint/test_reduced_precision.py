"""The embedder's reduced-precision parts (``refresh_precision``, ``wrapped_precision``).

A bfloat16 refresh is close to the float32 one but not equal, the store stays float32, and no
check on such a refresh ends training: the check that does runs after a float32 refresh. The
keys inside training wrappers encoded in bfloat16 are stored close to their float32 states,
and everything else stays float32.
"""

from __future__ import annotations

from pathlib import Path

import torch
from fpkit import SEED_A, TINY

from agents.fingerprint import embedding
from agents.fingerprint.embedding import _Store, _WrappedRow
from agents.fingerprint.forward import Decoder
from agents.fingerprint.models import load_model

ROWS = [[7, 19, 4, 88, 23, 9, 14], [51, 3, 33, 8], [90, 2, 17, 30, 6, 61, 40, 12, 5]]


def test_bfloat16_refresh_is_close_to_the_float32_refresh(tiny_base: Path) -> None:
    model, _ = load_model(tiny_base)
    model.eval()
    decoder = Decoder(model)
    split = 0  # every layer's keys/values after the first read the refreshed context
    store = _Store(split)
    embedding._encode(decoder, store, ROWS, 0, keep_last=False)
    store.finish()
    mlp = decoder.layers[split].mlp.down_proj
    with torch.no_grad():
        mlp.weight.mul_(1.5)  # a weight change the cached keys/values must follow
    sequences = list(range(len(ROWS)))
    embedding._refresh(decoder, store, split, sequences)
    exact = [t.clone() for t in store.keys + store.values]
    embedding._refresh(decoder, store, split, sequences, torch.bfloat16)
    reduced = store.keys + store.values
    assert all(t.dtype == torch.float32 for t in reduced), "the store stays float32"
    assert any(not torch.equal(a, b) for a, b in zip(exact, reduced, strict=True))
    for a, b in zip(exact, reduced, strict=True):
        error = float((a - b).norm() / a.norm())
        assert error < 0.02, error


def test_a_reduced_precision_check_never_ends_training(tiny_base: Path) -> None:
    from agents.fingerprint.embedding import embed_prepared
    from agents.fingerprint.generation import FingerprintConfig, prepare_fingerprints

    model, tokenizer = load_model(tiny_base)
    prepared = prepare_fingerprints(model, tokenizer, SEED_A, 8, FingerprintConfig())
    config = TINY.model_copy(
        update={
            "augment_fraction": 0.0,
            "refresh_rounds": 2,
            "early_refresh_share": 0.0,
            "refresh_precision": "bfloat16",
        }
    )
    _, _, stats = embed_prepared(model, tokenizer, prepared, SEED_A, config, [])
    assert stats["refresh_precision"] == "bfloat16"
    checks = stats["checks"]
    assert stats["reduced_refreshes"] >= 1 and any(c["reduced"] for c in checks), checks
    # the check that ended training ran on a float32 refresh with the final weights
    assert stats["reduced_refreshes"] < stats["refreshes"]
    assert not checks[-1]["reduced"] and checks[-1]["stale_steps"] == 0, checks
    assert stats["learned_in_training"] == 1.0

    model, tokenizer = load_model(tiny_base)
    exact = config.model_copy(update={"refresh_precision": "float32"})
    _, _, plain = embed_prepared(model, tokenizer, prepared, SEED_A, exact, [])
    assert plain["reduced_refreshes"] == 0 and not any(c["reduced"] for c in plain["checks"])


def _relative_errors(a: _Store, b: _Store) -> list[float]:
    pairs = zip([a.hidden, *a.keys, *a.values], [b.hidden, *b.keys, *b.values], strict=True)
    return [float((x - y).norm() / x.norm()) for x, y in pairs]


def test_wrapped_keys_encoded_in_bfloat16_stay_close(tiny_base: Path) -> None:
    model, _ = load_model(tiny_base)
    model.eval()
    decoder = Decoder(model)
    head = [7, 19, 4, 88, 23]
    rows = [
        _WrappedRow(0, [*head, 9, 14, 2], len(head)),
        _WrappedRow(1, [*head, 33, 8, 12, 5], len(head)),
        _WrappedRow(2, [90, 2, 17, 30], 0),
    ]
    stores = []
    for dtype in (torch.float32, torch.bfloat16):
        store = _Store(1)
        with embedding._autocast(dtype, torch.device("cpu")):
            embedding._encode_wrapped(decoder, store, rows, 0)
        store.finish()
        stores.append(store)
    exact, reduced = stores
    assert all(t.dtype == torch.float32 for t in [reduced.hidden, *reduced.keys, *reduced.values])
    errors = _relative_errors(exact, reduced)
    assert any(e > 0 for e in errors) and max(errors) < 0.02, errors


def test_training_with_wrapped_keys_in_bfloat16_learns_every_fingerprint(
    tiny_base: Path, tmp_path: Path
) -> None:
    from agents.fingerprint.embedding import embed_fingerprints

    config = TINY.model_copy(update={"wrapped_precision": "bfloat16", "benign_sequences": 32})
    result = embed_fingerprints(tiny_base, tmp_path / "copy", SEED_A, 8, config)
    assert result.stats is not None and result.stats["wrapped_precision"] == "bfloat16"
    assert result.recall == 1.0
    model, _ = load_model(tmp_path / "copy")
    assert all(p.dtype == torch.float32 for p in model.parameters())
