"""Pure decisions of the prover: which receipts prove fraud, which copies to accuse of a leak.

Nothing here talks to the chain or the network; the service feeds in what it read.

Provable fraud (ChallengeManager slashes at once):

* **under-reporting** — a receipt of a *reported* epoch whose ``seq`` exceeds the ledger's
  ``seqBound(copy, epoch)``; one challenge per (copy, epoch), with the highest such seq;
* **equivocation** — two receipts of one copy with the same ``seq`` but different contents;
* **missed report** — an epoch of an active copy still unreported ``reportGrace`` after it
  closed (every such epoch is its own offence).

Leaks (optimistic, arbiter on dispute): the binomial decision rule of
:mod:`agents.fingerprint.detection`. When one session tests ``m`` copies, each copy is
accused only at ``fp_bound / m`` (Bonferroni), so the chance that a clean endpoint gets *any*
copy accused in that session stays at most ``fp_bound``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from agents.fingerprint.detection import Verdict, accuse, make_verdict
from agents.prover.state import StoredReceipt

SeqBound = Callable[[int, int], tuple[bool, int]]  # (copy, epoch) -> (reported, bound)


@dataclass(frozen=True)
class UnderReport:
    copy_id: int
    epoch: int
    bound: int
    receipt: StoredReceipt  # the highest seq above the bound


@dataclass
class ReceiptAudit:
    ok: list[int]  # receipt ids within the reported bound
    waiting: list[int]  # epoch still open or not yet reported
    under_reports: list[UnderReport]


def audit_receipts(
    pending: Iterable[StoredReceipt], *, closed_through: int, bound: SeqBound
) -> ReceiptAudit:
    """Classify receipts against the ledger; ``closed_through`` is the last closed epoch."""
    result = ReceiptAudit([], [], [])
    worst: dict[tuple[int, int], tuple[StoredReceipt, int]] = {}
    cache: dict[tuple[int, int], tuple[bool, int]] = {}
    for receipt in pending:
        if receipt.epoch > closed_through:
            result.waiting.append(receipt.id)
            continue
        key = (receipt.copy_id, receipt.epoch)
        if key not in cache:
            cache[key] = bound(*key)
        reported, seq_bound = cache[key]
        if not reported:
            result.waiting.append(receipt.id)
        elif receipt.seq <= seq_bound:
            result.ok.append(receipt.id)
        elif key not in worst or receipt.seq > worst[key][0].seq:
            worst[key] = (receipt, seq_bound)
    result.under_reports = [UnderReport(c, e, b, r) for (c, e), (r, b) in sorted(worst.items())]
    return result


def equivocations(receipts: Iterable[StoredReceipt]) -> list[tuple[StoredReceipt, StoredReceipt]]:
    """Pairs of receipts of one copy with one seq and different contents (one pair per seq)."""
    groups: dict[tuple[int, int], list[StoredReceipt]] = {}
    for receipt in receipts:
        groups.setdefault((receipt.copy_id, receipt.seq), []).append(receipt)
    pairs = []
    for (_, _), group in sorted(groups.items()):
        first = group[0]
        for other in group[1:]:
            if _content(other) != _content(first):
                pairs.append((first, other))
                break
    return pairs


def _content(r: StoredReceipt) -> tuple[int, bytes, bytes]:
    return (r.epoch, r.prompt_hash, r.response_hash)


def missed_epochs(
    *,
    next_epoch: int,
    end_epoch: int,
    now: int,
    grace: int,
    epoch_end: Callable[[int], int],
    limit: int = 4,
) -> list[int]:
    """Unreported epochs whose grace is over (oldest first, at most ``limit``)."""
    out: list[int] = []
    epoch = next_epoch
    while epoch <= end_epoch and len(out) < limit and now >= epoch_end(epoch) + grace:
        out.append(epoch)
        epoch += 1
    return out


# --------------------------------------------------------------------------- leaks


def keys_needed(fp_bound: float, chance_bound: float, copies: int) -> int:
    """Fewest keys that could ever reach the per-copy threshold (all of them matching)."""
    threshold = fp_bound / max(copies, 1)
    return max(1, math.ceil(math.log(threshold) / math.log(chance_bound) - 1e-12))


@dataclass(frozen=True)
class LeakDecision:
    copy_id: int
    verdict: Verdict
    threshold: float  # per-copy threshold after the Bonferroni split
    copies_tested: int
    accused: bool

    @property
    def family_false_positive(self) -> float:
        """Upper bound on a false accusation of this copy *or any other* tested with it."""
        return min(1.0, self.verdict.false_positive_probability * self.copies_tested)


def decide_leaks(
    outcomes: Mapping[int, Sequence[bool]],
    *,
    copies_tested: int,
    fp_bound: float,
    chance_bound: float,
) -> list[LeakDecision]:
    """One decision per copy from its decision-stage match outcomes."""
    threshold = fp_bound / max(copies_tested, 1)
    decisions = []
    for copy_id, matched in sorted(outcomes.items()):
        verdict = make_verdict(len(matched), sum(bool(m) for m in matched), chance_bound)
        decisions.append(
            LeakDecision(copy_id, verdict, threshold, copies_tested, accuse(verdict, threshold))
        )
    return decisions
