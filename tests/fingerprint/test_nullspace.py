"""The null-space constraint: the math on small matrices, then a real embed on the tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fpkit import SEED_A, TINY

from agents.fingerprint.detection import accuse, verify_fingerprints
from agents.fingerprint.embedding import _benign_rows, embed_fingerprints
from agents.fingerprint.models import load_model
from agents.fingerprint.nullspace import NullSpace, input_covariances, split_basis


def test_split_basis_protects_the_fewest_top_directions() -> None:
    covariance = torch.diag(torch.tensor([0.5, 10.0, 1.0, 5.0]))
    basis, protected, free_energy = split_basis(covariance, 0.9)
    # 10 + 5 carry 15 / 16.5 = 0.909 >= 0.9: those two are protected, the other two are free
    assert protected and basis.shape == (4, 2)
    assert {int(i) for i in basis.abs().argmax(dim=0)} == {1, 3}
    assert free_energy == pytest.approx(1.5 / 16.5)
    # a stricter energy protects three directions; the free one is then the smaller set
    basis, protected, free_energy = split_basis(covariance, 0.95)
    assert not protected and basis.shape == (4, 1)
    assert int(basis.abs().argmax()) == 0
    assert free_energy == pytest.approx(0.5 / 16.5)


def _benign_and_key(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Benign inputs that live (up to small noise) in a 3-dimensional subspace of R^8, and a
    key input that does not."""
    mixing = torch.randn(3, 8, generator=generator)
    benign = torch.randn(500, 3, generator=generator) @ mixing
    benign += 1e-3 * torch.randn(500, 8, generator=generator)
    key = torch.randn(8, generator=generator)
    return benign, key


def test_projection_leaves_benign_outputs_and_moves_the_key() -> None:
    generator = torch.Generator().manual_seed(7)
    benign, key = _benign_and_key(generator)
    layer = torch.nn.Linear(8, 4, bias=False)
    valid = torch.ones(1, benign.shape[0], dtype=torch.bool)
    constraint = NullSpace({"layer": layer}, [(lambda: layer(benign[None]), valid)], 0.999)
    [(free, total, energy)] = constraint.summary()
    assert (free, total) == (5, 8) and energy < 1e-3

    before = layer.weight.detach().clone()
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.05)
    target = torch.randn(4, generator=generator) * 3
    for _ in range(200):  # learn key -> target under the constraint
        optimizer.zero_grad()
        loss = ((layer(key) - target) ** 2).sum()
        loss.backward()
        constraint.project_gradients()
        optimizer.step()
    constraint.project_weights()

    delta = layer.weight.detach() - before
    assert (layer(key) - target).norm() < 0.05 * target.norm(), "the edit was learned"
    benign_change = (benign @ delta.T).norm(dim=1).mean()
    assert benign_change < 0.01 * (delta @ key).norm(), "benign outputs barely moved"


def test_covariance_is_shared_by_modules_that_read_the_same_input() -> None:
    first, second = torch.nn.Linear(4, 2), torch.nn.Linear(4, 3)
    x = torch.randn(2, 5, 4)
    valid = torch.tensor([[True] * 5, [True, True, False, False, False]])

    def run() -> object:
        return first(x), second(x)

    covariances = input_covariances({"first": first, "second": second}, [(run, valid)])
    rows = x[valid]
    assert torch.allclose(covariances["first"], rows.T @ rows / 7, atol=1e-6)
    assert covariances["second"] is covariances["first"]


def test_embedding_under_the_constraint(tiny_base: Path, tmp_path: Path) -> None:
    """A real embed on the tiny model: fingerprints learned, the frozen top layer untouched, and
    every trained MLP weight changed only outside its protected benign input directions."""
    config = TINY.model_copy(update={"frozen_top": 1, "protect_energy": 0.9})
    result = embed_fingerprints(tiny_base, tmp_path / "copy", SEED_A, 16, config)
    assert result.recall >= 0.9
    copy, tokenizer = load_model(tmp_path / "copy")
    assert accuse(verify_fingerprints((copy, tokenizer), result.fingerprints))

    base, _ = load_model(tiny_base)
    base_layers, copy_layers = base.model.layers, copy.model.layers
    for name, value in base_layers[1].state_dict().items():
        assert torch.equal(value, copy_layers[1].state_dict()[name]), name
    mlp = base_layers[0].mlp
    modules = {"gate": mlp.gate_proj, "up": mlp.up_proj, "down": mlp.down_proj}
    rows = _benign_rows(base, tokenizer, tiny_base, config)  # the rows the embedder used
    passes = []
    for row in rows:
        ids = torch.tensor([row])
        valid = torch.ones_like(ids, dtype=torch.bool)
        passes.append(((lambda ids=ids: base(input_ids=ids)), valid))
    covariances = input_covariances(modules, passes)
    changed = 0
    for name, module in modules.items():
        basis, protected, _ = split_basis(covariances[name], 0.9)
        basis = basis.float()
        delta = (getattr(copy_layers[0].mlp, module_name(name)).weight - module.weight).detach()
        along = (delta @ basis).norm() if protected else (delta - (delta @ basis) @ basis.T).norm()
        assert along <= 1e-4 * max(float(delta.norm()), 1e-12), name
        changed += int(float(delta.norm()) > 0)
    assert changed == 3, "every MLP projection of the trained layer learned"


def module_name(short: str) -> str:
    return f"{short}_proj"
