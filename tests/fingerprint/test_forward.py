"""The explicit-context decoder (agents.fingerprint.forward) against transformers' own forward.

The embedder and the response chooser trust these logits instead of ``model(...)``; if they
drifted (padding, rotary positions, grouped-query attention, the cached context), fingerprints
would be chosen and trained against a different model than the one that serves them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from agents.fingerprint.forward import Decoder, Stream, sample_continuations
from agents.fingerprint.models import load_model

ROWS = [[5, 17, 9, 33, 2, 41, 8], [12, 7, 60], [3, 3, 90, 14, 22]]  # ragged: padding matters
PAD = 0


@pytest.fixture(scope="module")
def model(tiny_base: Path) -> torch.nn.Module:
    loaded, _ = load_model(tiny_base)
    loaded.eval()
    return loaded


def _reference_next_logits(model: torch.nn.Module, row: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([row])).logits[0, -1].float()  # type: ignore[no-any-return]


def test_stream_matches_the_transformers_forward_on_a_ragged_batch(model: torch.nn.Module) -> None:
    with torch.no_grad():
        stream = Stream(Decoder(model), ROWS, PAD, capture=1)
        got = stream.last_logits()
    for i, row in enumerate(ROWS):
        torch.testing.assert_close(got[i], _reference_next_logits(model, row), atol=1e-4, rtol=1e-4)


def test_appended_tokens_extend_the_cached_context_exactly(model: torch.nn.Module) -> None:
    extra = [[4, 11], [19, 23], [31, 6]]
    with torch.no_grad():
        stream = Stream(Decoder(model), ROWS, PAD)
        for step in range(2):
            stream.append(torch.tensor([e[step] for e in extra]))
        got = stream.last_logits()
    for i, row in enumerate(ROWS):
        want = _reference_next_logits(model, row + extra[i])
        torch.testing.assert_close(got[i], want, atol=1e-4, rtol=1e-4)


def test_keys_only_at_top_keeps_the_same_keys_and_values(model: torch.nn.Module) -> None:
    """The refresh skips the top layer's attention and MLP: the keys/values are those of the
    full run, bit for bit."""
    decoder = Decoder(model)
    width = max(len(r) for r in ROWS)
    ids = torch.tensor([r + [PAD] * (width - len(r)) for r in ROWS])
    valid = torch.tensor([[j < len(r) for j in range(width)] for r in ROWS])
    positions = torch.arange(width)[None].expand(len(ROWS), -1)
    with torch.no_grad():
        hidden = decoder.embed(ids)
        top = decoder.num_layers
        _, keys, values = decoder.run(hidden, positions, valid, 0, top, keep=True)
        below, cut_k, cut_v = decoder.run(
            hidden, positions, valid, 0, top, keep=True, keys_only_at_top=True
        )
        into_top, _, _ = decoder.run(hidden, positions, valid, 0, top - 1)
    assert len(cut_k) == len(cut_v) == top
    for a, b in zip(keys + values, cut_k + cut_v, strict=True):
        assert torch.equal(a, b)
    torch.testing.assert_close(below[valid], into_top[valid])


def test_take_returns_the_positions_of_one_row_in_order(model: torch.nn.Module) -> None:
    decoder = Decoder(model)
    with torch.no_grad():
        stream = Stream(decoder, ROWS, PAD, capture=1)
        stream.append(torch.tensor([4, 19, 31]))
        row = 1
        count = len(ROWS[row]) + 1
        hidden, keys, values, last = stream.take(row, count)
        reference = model(
            input_ids=torch.tensor([[*ROWS[row], 19]]), output_hidden_states=True
        ).hidden_states
    assert hidden.shape[0] == last.shape[0] == count
    assert len(keys) == len(values) == decoder.num_layers - 1
    # hidden_states[1] enters layer 1; the last entry is after the final norm, so compare logits
    torch.testing.assert_close(hidden, reference[1][0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(
        decoder.logits(last)[-1],
        _reference_next_logits(model, [*ROWS[row], 19]),
        atol=1e-4,
        rtol=1e-4,
    )


def test_sampling_is_deterministic_for_a_seeded_generator(model: torch.nn.Module) -> None:
    decoder = Decoder(model)
    runs = [
        sample_continuations(decoder, ROWS, 5, PAD, torch.Generator().manual_seed(seed))
        for seed in (7, 7, 8)
    ]
    assert runs[0] == runs[1]
    assert all(len(tail) == 5 for tail in runs[0])
    assert runs[0] != runs[2]


def test_a_model_without_decoder_layers_is_refused() -> None:
    from agents.fingerprint.errors import ConfigError

    with pytest.raises(ConfigError, match="decoder-only"):
        Decoder(torch.nn.Linear(2, 2))  # type: ignore[arg-type]
