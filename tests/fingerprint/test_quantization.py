"""quantize_blockwise: the rounding of llama.cpp's Q8_0 / Q4_0 blocks, on small known weights."""

from __future__ import annotations

import pytest
import torch

from agents.fingerprint.errors import ConfigError
from agents.fingerprint.evaluation import GGUF_BLOCK, quantize_blockwise


class Tied(torch.nn.Module):
    """An embedding and an output head sharing one matrix (as SmolLM2 does), plus a layer whose
    input width is not a multiple of the block size."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.head = torch.nn.Linear(64, 10, bias=False)
        self.head.weight.data = torch.randn(10, 64, generator=generator)
        self.embed = torch.nn.Embedding(10, 64)
        self.embed.weight = self.head.weight
        self.odd = torch.nn.Linear(33, 4)


@pytest.mark.parametrize(("fmt", "levels"), [("q8_0", 255), ("q4_0", 16)])
def test_each_block_holds_at_most_the_formats_levels(fmt: str, levels: int) -> None:
    model = Tied()
    before = model.head.weight.detach().clone()
    quantized = quantize_blockwise(model, fmt)
    after = quantized.head.weight.detach()
    assert torch.equal(model.head.weight, before), "the original is left alone"
    assert not torch.equal(after, before)
    blocks, original = after.reshape(-1, GGUF_BLOCK), before.reshape(-1, GGUF_BLOCK)
    for block, source in zip(blocks, original, strict=True):
        assert len(torch.unique(block)) <= levels
        # rounding to the nearest level: at most half a step off, except that Q4_0's levels
        # run from -8 to +7 steps, so weights beyond +7 steps (opposite the extreme) are
        # clamped there and lose up to a whole step
        step = source.abs().max() / (127 if fmt == "q8_0" else 8)
        bound = step / 2 if fmt == "q8_0" else step
        assert (block - source).abs().max() <= bound * 1.01
    assert quantized.embed.weight is quantized.head.weight, "tied weights stay tied"
    assert torch.equal(quantized.odd.weight, model.odd.weight), "33 inputs: left as llama.cpp does"


def test_q8_0_error_is_far_smaller_than_q4_0() -> None:
    model = Tied()
    errors = {
        fmt: (quantize_blockwise(model, fmt).head.weight - model.head.weight).abs().mean().item()
        for fmt in ("q8_0", "q4_0")
    }
    assert errors["q8_0"] * 10 < errors["q4_0"], errors


def test_unknown_format_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="q8_0, q4_0"):
        quantize_blockwise(Tied(), "q2_k")
