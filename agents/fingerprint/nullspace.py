"""Null-space constraint: fingerprint edits that leave the layers' outputs on benign text alone.

For a trained linear map ``W`` whose inputs on ordinary text have (uncentred) covariance
``C = E[x xᵀ]``, the change of its output on that text is ``ΔW x``, with
``E‖ΔW x‖² = Σ_j λ_j ‖ΔW u_j‖²`` over the eigenpairs of ``C``. Keeping ``ΔW`` at zero along the
top eigen-directions — the fewest carrying ``energy`` of ``tr C`` — leaves only the small
remainder of the spectrum to benign text, while inputs unlike ordinary text (the end of a
random-word key) keep room for the edit. This is the idea of AlphaEdit (Fang et al., ICLR 2025,
"AlphaEdit: Null-Space Constrained Knowledge Editing for Language Models"), used here inside
gradient training: every gradient is projected before the optimizer step, and the accumulated
change once an epoch (Adam's per-weight scaling lets a little leave the free directions), so
the weights that are checked and delivered satisfy the constraint exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


@dataclass
class _Constraint:
    weight: torch.Tensor  # the parameter, updated in place
    base: torch.Tensor  # the weight before training
    basis: torch.Tensor  # (in, r) orthonormal input directions
    protected: bool  # basis spans the directions the change may not use (else those it may)
    energy: float  # share of the benign input energy along the free directions

    def project(self, matrix: torch.Tensor) -> torch.Tensor:
        along = (matrix @ self.basis) @ self.basis.T
        return matrix - along if self.protected else along

    @property
    def free(self) -> int:
        size, rank = self.basis.shape
        return size - rank if self.protected else rank


def input_covariances(
    modules: dict[str, torch.nn.Linear],
    passes: Iterable[tuple[Callable[[], object], torch.Tensor]],
) -> dict[str, torch.Tensor]:
    """``E[x xᵀ]`` of each module's inputs over the tokens of ``passes``: each pass is a forward
    run (with the base weights) and the (batch, length) mask of its real tokens (for modules
    that see the (batch, length) layout; 2-D inputs are taken as real tokens only)."""
    import torch

    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    mask: list[torch.Tensor] = []
    seen: dict[int, tuple[torch.Tensor, str]] = {}  # input -> first module (gate and up share)
    alias: dict[str, str] = {}

    def hook(name: str) -> Any:
        def record(_module: Any, inputs: tuple[torch.Tensor, ...]) -> None:
            tensor = inputs[0]
            first = seen.setdefault(id(tensor), (tensor, name))[1]
            if first != name:
                alias[name] = first
                return
            # (batch, length, in) inputs keep their real tokens; a packed (tokens, in) input
            # (Decoder.run on a ragged batch) holds nothing else
            x = (tensor[mask[0]] if tensor.dim() == 3 else tensor).detach().float()
            sums[name] = sums[name] + x.T @ x if name in sums else x.T @ x
            counts[name] = counts.get(name, 0) + x.shape[0]

        return record

    handles = [m.register_forward_pre_hook(hook(n)) for n, m in modules.items()]
    try:
        with torch.no_grad():
            for run, valid in passes:
                mask[:] = [valid]
                seen.clear()  # also releases the inputs it kept alive (ids are reused)
                run()
    finally:
        for h in handles:
            h.remove()
    out = {n: sums[n] / max(counts[n], 1) for n in sums}
    return {**out, **{n: out[first] for n, first in alias.items()}}


def split_basis(covariance: torch.Tensor, energy: float) -> tuple[torch.Tensor, bool, float]:
    """Split the eigenvectors of ``covariance`` into the fewest top ones carrying ``energy`` of
    its trace (protected) and the rest (free). Returns the smaller of the two sets, whether it
    is the protected one, and the share of the trace the free directions carry."""
    import torch

    values, vectors = torch.linalg.eigh(covariance.double())  # ascending
    values = values.clamp_min(0).flip(0)
    vectors = vectors.flip(1)
    share = values.cumsum(0) / values.sum().clamp_min(1e-30)
    k = min(int((share < energy).sum()) + 1, values.shape[0])
    free_energy = float(1 - share[k - 1])
    if k <= values.shape[0] - k:
        return vectors[:, :k].contiguous(), True, free_energy
    return vectors[:, k:].contiguous(), False, free_energy


Bases = dict[str, tuple["torch.Tensor", bool, float]]


def input_bases(
    modules: dict[str, torch.nn.Linear],
    passes: Iterable[tuple[Callable[[], object], torch.Tensor]],
    energy: float,
) -> Bases:
    """Per module, :func:`split_basis` of its input covariance over ``passes`` (modules that
    read the same input share one eigendecomposition)."""
    covariances = input_covariances(modules, passes)
    out: Bases = {}
    done: list[tuple[torch.Tensor, tuple[torch.Tensor, bool, float]]] = []
    for name, module in modules.items():
        cov = covariances[name]
        same = [d for d in done if d[0] is cov]
        if same:
            out[name] = same[0][1]
            continue
        basis, protected, free_energy = split_basis(cov, energy)
        out[name] = (basis.to(module.weight.dtype), protected, free_energy)
        done.append((cov, out[name]))
    return out


class NullSpace:
    """Keeps each constrained weight's change inside the input directions left free."""

    def __init__(
        self,
        modules: dict[str, torch.nn.Linear],
        passes: Iterable[tuple[Callable[[], object], torch.Tensor]] | None,
        energy: float,
        bases: Bases | None = None,
    ) -> None:
        """Constrain ``modules`` to keep ``energy`` of their inputs' energy over ``passes``;
        ``bases`` (an earlier :attr:`bases` of the same weights and text) skips the passes."""
        if bases is None:
            if passes is None:
                raise ValueError("NullSpace needs the benign passes or precomputed bases")
            bases = input_bases(modules, passes, energy)
        self.bases = bases
        self.constraints: list[_Constraint] = []
        for name, module in modules.items():
            basis, protected, free_energy = bases[name]
            basis = basis.to(module.weight.device, module.weight.dtype)
            base = module.weight.detach().clone()
            constraint = _Constraint(module.weight, base, basis, protected, free_energy)
            self.constraints.append(constraint)
            log.info(
                "%s: %d of %d input directions free (%.2e of the benign input energy)",
                name, constraint.free, basis.shape[0], free_energy,
            )  # fmt: skip

    def summary(self) -> list[tuple[int, int, float]]:
        """(free, total) input directions and the benign energy share of the free ones, per
        constrained weight."""
        return [(c.free, c.basis.shape[0], c.energy) for c in self.constraints]

    def project_gradients(self) -> None:
        for c in self.constraints:
            if c.weight.grad is not None:
                c.weight.grad.copy_(c.project(c.weight.grad))

    def project_weights(self) -> None:
        import torch

        with torch.no_grad():
            for c in self.constraints:
                c.weight.copy_(c.base + c.project(c.weight - c.base))
