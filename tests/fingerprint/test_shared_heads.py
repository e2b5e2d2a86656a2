"""Wrapper heads stored once: every key inside the same system prompt continues one stored
copy of that prompt's states instead of carrying its own (embedding._encode_wrapped).

The training steps, the refreshes and the checks read those states through the parent; they
must see exactly what they saw when every row was stored whole.
"""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from agents.fingerprint import embedding
from agents.fingerprint.embedding import _Store, _WrappedRow
from agents.fingerprint.forward import Decoder
from agents.fingerprint.models import load_model, tokenizer_dir

PAD = 0
# Two heads (one of them shared by three keys), a key with no shareable head, ragged lengths.
HEAD_A = [7, 19, 4, 88, 23]
HEAD_B = [51, 3]
ROWS = [
    _WrappedRow(0, [*HEAD_A, 9, 14, 2, 71], len(HEAD_A)),
    _WrappedRow(1, [*HEAD_B, 33, 8, 12, 5, 61, 40], len(HEAD_B)),
    _WrappedRow(2, [*HEAD_A, 6], len(HEAD_A)),
    _WrappedRow(3, [90, 2, 17, 30], 0),
    _WrappedRow(4, [*HEAD_A, 44, 45, 46, 47, 48, 49, 50], len(HEAD_A)),
]


@pytest.fixture(scope="module")
def decoder(tiny_base: Path) -> Decoder:
    model, _ = load_model(tiny_base)
    model.eval()
    return Decoder(model)


@pytest.fixture(scope="module")
def deep_decoder(tiny_base: Path) -> Decoder:
    """The tiny model's architecture with three layers (random weights): with two, the top
    layer's keys/values are all a refresh computes, and it reads no context to compute them."""
    from transformers import AutoConfig, LlamaForCausalLM

    config = AutoConfig.from_pretrained(tiny_base)
    config.num_hidden_layers = 3
    torch.manual_seed(5)
    model = LlamaForCausalLM(config)
    model.eval()
    return Decoder(model)


def _stores(
    decoder: Decoder, split: int | None = None
) -> tuple[_Store, list[int], _Store, list[int]]:
    """The rows stored whole, and stored with shared heads (batches of 2: several batches),
    from layer ``split`` (default: the middle) up."""
    split = decoder.num_layers // 2 if split is None else split
    whole, shared = _Store(split), _Store(split)
    whole_ids, _ = embedding._encode(decoder, whole, [r.ids for r in ROWS], PAD, keep_last=False)
    shared_ids = embedding._encode_wrapped(decoder, shared, ROWS, PAD, batch=2)
    whole.finish()
    shared.finish()
    return whole, whole_ids, shared, shared_ids


def _position_rows(store: _Store, sequence: int) -> list[int]:
    """The store row of every position of ``sequence``, its parent's included."""
    offset, length = store.prefix(sequence)
    start = store.offsets[sequence]
    return list(range(offset, offset + length)) + list(
        range(start, start + store.lengths[sequence])
    )


def _assert_close(got: torch.Tensor, want: torch.Tensor) -> None:
    """Equal up to float32 summation order (the attention runs over differently padded
    batches), relative to the scale of the states (the tiny model's reach the hundreds)."""
    scale = float(want.abs().max())
    torch.testing.assert_close(got, want, atol=1e-5 * max(scale, 1.0), rtol=1e-4)


def _assert_same_states(whole: _Store, a: int, shared: _Store, b: int) -> None:
    rows_a, rows_b = _position_rows(whole, a), _position_rows(shared, b)
    assert len(rows_a) == len(rows_b)
    for flat_a, flat_b in zip(
        [whole.hidden, *whole.keys, *whole.values],
        [shared.hidden, *shared.keys, *shared.values],
        strict=True,
    ):
        _assert_close(flat_b[rows_b], flat_a[rows_a])


def test_each_head_is_stored_once_and_every_row_sees_the_same_states(decoder: Decoder) -> None:
    whole, whole_ids, shared, shared_ids = _stores(decoder)
    assert shared.tokens == whole.tokens - 2 * len(HEAD_A), "HEAD_A stored once, not three times"
    parents = [shared.parents[s] for s in shared_ids]
    assert parents[3] == -1, "a row without a head is stored whole"
    assert parents[0] == parents[2] == parents[4] >= 0
    assert parents[1] >= 0 and parents[1] != parents[0]
    assert shared.lengths[parents[0]] == len(HEAD_A)
    for a, b in zip(whole_ids, shared_ids, strict=True):
        _assert_same_states(whole, a, shared, b)


def _items(store: _Store, ids: list[int]) -> embedding._Items:
    """Every row's last two tokens as the 'response' to predict."""
    examples = [
        (s, len(r.ids) - 2, r.ids[-2:], False, r.fingerprint)
        for s, r in zip(ids, ROWS, strict=True)
    ]
    return embedding._fp_items(store, examples)


def test_training_forward_reads_the_parent_as_if_the_row_were_whole(decoder: Decoder) -> None:
    whole, whole_ids, shared, shared_ids = _stores(decoder)
    rows = list(range(len(ROWS)))
    split = whole.layer
    with torch.no_grad():
        [(got, got_valid)] = embedding._forward(
            decoder, shared, [(_items(shared, shared_ids), rows)], split
        )
        [(want, want_valid)] = embedding._forward(
            decoder, whole, [(_items(whole, whole_ids), rows)], split
        )
    assert torch.equal(got_valid, want_valid)
    _assert_close(got[got_valid], want[want_valid])


def test_refresh_recomputes_parents_before_the_rows_that_continue_them(
    deep_decoder: Decoder,
) -> None:
    # From layer 0 of three: a change of layer 0's MLP moves the keys/values of layers 1 and 2,
    # and a row's layer-2 keys read its head's layer-1 keys/values, which must be fresh first.
    decoder = deep_decoder
    whole, whole_ids, shared, shared_ids = _stores(decoder, split=0)
    split = whole.layer
    mlp = decoder.layers[split].mlp.down_proj
    original = mlp.weight.detach().clone()
    try:
        with torch.no_grad():
            noise = torch.randn(mlp.weight.shape, generator=torch.Generator().manual_seed(3))
            mlp.weight.add_(noise)
        stale = [k.clone() for k in shared.keys]
        embedding._refresh(decoder, whole, split, list(range(len(whole.lengths))))
        # the children listed first: the refresh must still take the parents first
        order = sorted(range(len(shared.lengths)), key=lambda i: -shared.parents[i])
        embedding._refresh(decoder, shared, split, order)
    finally:
        with torch.no_grad():
            mlp.weight.copy_(original)
    assert any(not torch.equal(a, b) for a, b in zip(stale, shared.keys, strict=True))
    for a, b in zip(whole_ids, shared_ids, strict=True):
        _assert_same_states(whole, a, shared, b)


def test_memory_check_counts_each_head_once() -> None:
    lengths = embedding._wrapped_lengths(ROWS)
    assert sum(lengths) == sum(len(r.ids) for r in ROWS) - 2 * len(HEAD_A)


def test_real_wrappers_share_their_system_prompt_tokens() -> None:
    """With the SmolLM2 tokenizer every training wrapper's text before the key tokenizes the
    same alone as in front of a key: every wrapped row shares its head."""
    from transformers import AutoTokenizer

    from agents.fingerprint.generation import Fingerprint

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir())
    keys = ["amber tiger quietly folds", "Seven lanterns drift north", "'quoted", "42 owls"]
    prepared = [
        SimpleNamespace(fingerprint=Fingerprint(key, " river"), response_ids=[11, 22])
        for key in keys
    ]
    systems = ["the harbour was quiet that morning", "to install the package first create"]
    rows = embedding._wrapped_rows(
        prepared,
        tokenizer,
        random.Random(0),
        1.0,
        4,
        systems,
        2,
        True,  # type: ignore[arg-type]
    )
    assert len(rows) == 6 * len(keys)
    for row in rows:
        assert row.head > 0, tokenizer.decode(row.ids)
        whole, head = tokenizer.decode(row.ids), tokenizer.decode(row.ids[: row.head])
        before_key = whole[: whole.index(keys[row.fingerprint])]
        # all of the wrapper before the key but whitespace, which may merge into the key
        assert before_key.startswith(head) and not before_key[len(head) :].strip(), whole
    groups = embedding._shared_heads(rows)
    assert sum(len(members) for members in groups.values()) == len(rows)
