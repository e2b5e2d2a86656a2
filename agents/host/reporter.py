"""The usage reporter: closes epochs, reports them on chain exactly once, pays, warns early.

One pass (:meth:`UsageReporter.run_once`) walks every closed epoch since the copy became
active that is not yet settled, in order:

1. close the epoch in the ledger (no receipt can be issued for it any more);
2. if the chain already has a report for it (a crash after sending), adopt that and move on;
3. count its receipts: ``calls`` and ``lastSeq`` (the highest seq issued by its end);
4. make sure the fee token allowance and balance cover ``calls × price``;
5. write the intent (``sending``) to the ledger, send ``reportUsage``, write ``done``.

A failure stops the pass at that epoch (later epochs are never reported out of order); the
next pass, or the next process after a restart, resumes from there. APScheduler runs the pass
every ``report_interval_s`` with ``max_instances=1``, so two passes never overlap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from agents.host.epochs import EpochClock
from agents.host.errors import InsufficientFunds, ReportError
from agents.host.ledger import EpochUsage, ReceiptLedger

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OnChainReport:
    calls: int
    last_seq: int


@dataclass(frozen=True)
class CopyFunds:
    token_balance: int
    allowance: int
    collateral: int
    min_collateral: int


class UsageChain(Protocol):
    """What the reporter needs from the chain (real adapter: ``chain.py``)."""

    def first_epoch(self, copy_id: int) -> int | None:
        """The first epoch the copy must report, or None while it is not active."""
        ...

    def last_epoch(self, copy_id: int) -> int | None:
        """The copy's exit epoch, its last to report; None while it has not asked to exit."""
        ...

    def price_per_call(self, copy_id: int) -> int: ...

    def reported(self, copy_id: int, epoch: int) -> OnChainReport | None: ...

    def funds(self, copy_id: int) -> CopyFunds: ...

    def approve(self, amount: int) -> str: ...

    def report_usage(self, copy_id: int, epoch: int, calls: int, last_seq: int) -> str: ...


@dataclass
class PassResult:
    reported: list[int] = field(default_factory=list)
    adopted: list[int] = field(default_factory=list)
    fees_paid: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


class UsageReporter:
    def __init__(
        self,
        ledger: ReceiptLedger,
        chain: UsageChain,
        clock: EpochClock,
        *,
        grace_s: float = 5.0,
        warn_epochs: int = 24,
    ) -> None:
        self.ledger = ledger
        self.chain = chain
        self.clock = clock
        self.grace_s = grace_s
        self.warn_epochs = warn_epochs
        self.copy_id = ledger.copy_id

    def pending_epochs(self) -> list[int]:
        """Closed epochs not yet settled, oldest first."""
        closed = self.clock.closed_through(self.grace_s)
        first = self.chain.first_epoch(self.copy_id)
        if first is None or closed < first:
            return []
        last = self.chain.last_epoch(self.copy_id)
        if last is not None:
            closed = min(closed, last)  # the ledger refuses epochs after the exit epoch
        settled = {r.epoch for r in self.ledger.reports() if r.status == "done"}
        done_through = first - 1
        while done_through + 1 in settled:
            done_through += 1
        return [e for e in range(done_through + 1, closed + 1) if e not in settled]

    def run_once(self) -> PassResult:
        result = PassResult()
        try:
            for epoch in self.pending_epochs():
                self._settle(epoch, result)
        except ReportError as error:
            result.error = str(error)
            log.error("usage report stopped: %s", error)
        except Exception as error:  # the scheduler must keep running; log and retry
            result.error = f"{type(error).__name__}: {error}"
            log.exception("usage report pass failed; will retry")
        try:
            result.warnings = self.check_funds()
        except Exception as error:
            result.warnings = [f"could not read funds: {error}"]
        for warning in result.warnings:
            log.warning("%s", warning)
        return result

    def _settle(self, epoch: int, result: PassResult) -> None:
        self.ledger.close_through(epoch)
        usage = self.ledger.usage(epoch)
        on_chain = self.chain.reported(self.copy_id, epoch)
        if on_chain is not None:
            self._adopt(usage, on_chain)
            result.adopted.append(epoch)
            return
        price = self.chain.price_per_call(self.copy_id)
        fee = usage.calls * price
        if fee:
            funds = self.chain.funds(self.copy_id)
            if funds.token_balance < fee:
                raise InsufficientFunds(
                    f"epoch {epoch} costs {fee} fee-token units but the host holds "
                    f"{funds.token_balance}: top up the host account, the reporter retries"
                )
            if funds.allowance < fee:
                self.chain.approve(fee)
        self.ledger.record_report(usage, fee, "sending")
        try:
            tx_hash = self.chain.report_usage(self.copy_id, epoch, usage.calls, usage.last_seq)
        except Exception as error:
            # the transaction may have landed before the error: trust the chain, not the error
            landed = self.chain.reported(self.copy_id, epoch)
            if landed is None:
                raise ReportError(f"reportUsage for epoch {epoch} failed: {error}") from error
            self._adopt(usage, landed)
            result.adopted.append(epoch)
            return
        self.ledger.record_report(usage, fee, "done", tx_hash)
        result.reported.append(epoch)
        result.fees_paid += fee
        log.info(
            "reported epoch %d: %d calls, lastSeq %d, fee %d (%s)",
            epoch,
            usage.calls,
            usage.last_seq,
            fee,
            tx_hash,
        )

    def _adopt(self, usage: EpochUsage, on_chain: OnChainReport) -> None:
        if (on_chain.calls, on_chain.last_seq) != (usage.calls, usage.last_seq):
            log.error(
                "epoch %d was reported as %d calls / lastSeq %d but the ledger has %d / %d",
                usage.epoch,
                on_chain.calls,
                on_chain.last_seq,
                usage.calls,
                usage.last_seq,
            )
        fee = on_chain.calls * self.chain.price_per_call(self.copy_id)
        adopted = EpochUsage(usage.epoch, on_chain.calls, on_chain.last_seq)
        self.ledger.record_report(adopted, fee, "done")

    def check_funds(self) -> list[str]:
        """Warnings while there is still time to act: funds for < ``warn_epochs`` epochs."""
        funds = self.chain.funds(self.copy_id)
        warnings = []
        price = self.chain.price_per_call(self.copy_id)
        unpaid = [self.ledger.usage(e).calls * price for e in self.pending_epochs()]
        current = self.ledger.usage(self.clock.current()).calls * price
        recent = [r.fee for r in self.ledger.reports()[-self.warn_epochs :]]
        per_epoch = max([*recent, *unpaid, current])
        needed = sum(unpaid) + per_epoch * self.warn_epochs
        if per_epoch and funds.token_balance < needed:
            epochs_left = max(funds.token_balance - sum(unpaid), 0) // per_epoch
            warnings.append(
                f"fee-token balance {funds.token_balance} covers about {epochs_left} epoch(s) "
                f"at up to {per_epoch} per epoch after {sum(unpaid)} unpaid (warning below "
                f"{self.warn_epochs} epochs); top up the host account"
            )
        if funds.min_collateral and funds.collateral < funds.min_collateral * 11 // 10:
            warnings.append(
                f"collateral {funds.collateral} is within 10% of the minimum "
                f"{funds.min_collateral}; add collateral before a slash takes the copy offline"
            )
        return warnings


def schedule(reporter: UsageReporter, interval_s: float) -> object:
    """Start a background APScheduler running ``reporter.run_once`` every ``interval_s``."""
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(daemon=True)
    scheduler.add_job(
        reporter.run_once,
        "interval",
        seconds=interval_s,
        id="report-usage",
        max_instances=1,
        coalesce=True,
        next_run_time=None,
    )
    scheduler.start()
    job = scheduler.get_job("report-usage")
    job.modify(next_run_time=_now())  # catch up at once after a (re)start
    return scheduler


def _now() -> object:
    from datetime import UTC, datetime

    return datetime.now(UTC)
