"""Receipt ledger, usage log import and the reporter against an in-memory chain."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from eth_utils.crypto import keccak
from receipts_check import recover

from agents.chain.keystore import dev_account
from agents.host.epochs import EpochClock
from agents.host.errors import LedgerError, LogFormatError
from agents.host.ledger import Call, ReceiptLedger, ReceiptSigner
from agents.host.reporter import CopyFunds, OnChainReport, UsageReporter
from agents.host.usage_log import import_log

H = keccak(b"x")
VC = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_ledger(path: Path, clock: EpochClock, copy_id: int = 3) -> ReceiptLedger:
    signer = ReceiptSigner(dev_account(2), 31337, VC)
    return ReceiptLedger(path, copy_id=copy_id, signer=signer, clock=clock, durable=False)


@dataclass
class FakeChain:
    price: int = 10
    balance: int = 10_000
    allowance: int = 0
    first: int | None = 0
    end: int | None = None
    reports: dict[int, OnChainReport] = field(default_factory=dict)
    sent: list[tuple[int, int, int]] = field(default_factory=list)
    approvals: list[int] = field(default_factory=list)
    fail_next: str | None = None  # "before" or "after" the tx lands

    def first_epoch(self, copy_id: int) -> int | None:
        return self.first

    def last_epoch(self, copy_id: int) -> int | None:
        return self.end

    def price_per_call(self, copy_id: int) -> int:
        return self.price

    def reported(self, copy_id: int, epoch: int) -> OnChainReport | None:
        return self.reports.get(epoch)

    def funds(self, copy_id: int) -> CopyFunds:
        return CopyFunds(self.balance, self.allowance, 1000, 500)

    def approve(self, amount: int) -> str:
        self.approvals.append(amount)
        self.allowance = amount
        return "0xapprove"

    def report_usage(self, copy_id: int, epoch: int, calls: int, last_seq: int) -> str:
        if self.fail_next == "before":
            self.fail_next = None
            raise ConnectionError("node went away")
        assert epoch not in self.reports, "reported twice"
        if self.reports:
            assert epoch == max(self.reports) + 1, "out of order"
        fee = calls * self.price
        assert self.allowance >= fee and self.balance >= fee
        self.allowance -= fee
        self.balance -= fee
        self.reports[epoch] = OnChainReport(calls, last_seq)
        self.sent.append((epoch, calls, last_seq))
        if self.fail_next == "after":
            self.fail_next = None
            raise TimeoutError("no receipt")
        return f"0xtx{epoch}"


def test_ledger_seq_contiguous_signed_and_persistent(tmp_path: Path) -> None:
    now = Clock(100.0)
    clock = EpochClock(0, 60, now)
    ledger = make_ledger(tmp_path / "l.db", clock)
    first = ledger.issue([Call(H, H), Call(H, H)])
    assert [r.receipt.seq for r in first if r] == [1, 2]
    receipt = first[0]
    assert receipt is not None and receipt.receipt.epoch == 1
    payload = {**receipt.to_json(), "chainId": 31337, "verifyingContract": VC}
    assert recover(payload) == dev_account(2).address
    ledger.close()

    reopened = make_ledger(tmp_path / "l.db", clock)
    assert reopened.last_seq == 2
    assert reopened.issue_one(H, H).receipt.seq == 3
    with pytest.raises(LedgerError, match="copy 3"):
        make_ledger(tmp_path / "l.db", clock, copy_id=4)


def test_closed_epoch_is_never_written_again(tmp_path: Path) -> None:
    now = Clock(30.0)
    ledger = make_ledger(tmp_path / "l.db", EpochClock(0, 60, now))
    ledger.issue_one(H, H)
    ledger.close_through(0)  # reporter closed epoch 0 while a call was still in flight
    late = ledger.issue_one(H, H)
    assert late.receipt.epoch == 1
    assert ledger.usage(0).calls == 1 and ledger.usage(0).last_seq == 1
    assert ledger.usage(1).calls == 1 and ledger.usage(1).last_seq == 2
    assert ledger.usage(5).calls == 0 and ledger.usage(5).last_seq == 2


def test_reporter_reports_every_closed_epoch_once_and_catches_up(tmp_path: Path) -> None:
    now = Clock(10.0)
    clock = EpochClock(0, 60, now)
    ledger = make_ledger(tmp_path / "l.db", clock)
    chain = FakeChain()
    ledger.issue([Call(H, H)] * 3)  # epoch 0: seq 1..3
    now.t = 70.0
    ledger.issue([Call(H, H)] * 2)  # epoch 1: seq 4..5
    reporter = UsageReporter(ledger, chain, clock, grace_s=5)
    assert reporter.run_once().reported == [0]  # epoch 1 still open
    now.t = 250.0  # epochs 1, 2, 3 closed while "down"
    result = reporter.run_once()
    assert result.reported == [1, 2, 3] and result.error is None
    assert chain.sent == [(0, 3, 3), (1, 2, 5), (2, 0, 5), (3, 0, 5)]
    assert chain.balance == 10_000 - 50
    assert reporter.run_once().reported == []  # nothing twice
    ledger.close()

    # a restarted process with the same ledger reports nothing again
    again = UsageReporter(make_ledger(tmp_path / "l.db", clock), chain, clock, grace_s=5)
    assert again.pending_epochs() == []
    assert len(chain.sent) == 4


def test_reporting_stops_at_the_exit_epoch(tmp_path: Path) -> None:
    now = Clock(10.0)
    clock = EpochClock(0, 60, now)
    ledger = make_ledger(tmp_path / "l.db", clock)
    chain = FakeChain(end=1)  # the host asked to exit during epoch 1
    ledger.issue([Call(H, H)] * 2)
    now.t = 400.0  # epochs 0..5 closed
    result = UsageReporter(ledger, chain, clock, grace_s=5).run_once()
    assert result.error is None and result.reported == [0, 1]
    assert [sent[0] for sent in chain.sent] == [0, 1]
    assert UsageReporter(ledger, chain, clock, grace_s=5).pending_epochs() == []
    ledger.close()


def test_crash_around_the_transaction_never_double_reports(tmp_path: Path) -> None:
    now = Clock(10.0)
    clock = EpochClock(0, 60, now)
    ledger = make_ledger(tmp_path / "l.db", clock)
    chain = FakeChain()
    ledger.issue([Call(H, H)] * 4)
    now.t = 130.0
    chain.fail_next = "after"  # landed, but we saw an error
    result = UsageReporter(ledger, chain, clock, grace_s=0).run_once()
    assert result.adopted == [0] and result.reported == [1]
    chain.fail_next = "before"
    ledger.issue_one(H, H)
    now.t = 190.0
    failed = UsageReporter(ledger, chain, clock, grace_s=0).run_once()
    assert failed.error is not None and "epoch 2" in failed.error
    assert ledger.report(2) is not None and ledger.report(2).status == "sending"  # type: ignore[union-attr]
    retried = UsageReporter(ledger, chain, clock, grace_s=0).run_once()
    assert retried.reported == [2]
    assert [s[0] for s in chain.sent] == [0, 1, 2]
    assert chain.reports[2] == OnChainReport(1, 5)


def test_insufficient_funds_stops_in_order_and_warns_early(tmp_path: Path) -> None:
    now = Clock(10.0)
    clock = EpochClock(0, 60, now)
    ledger = make_ledger(tmp_path / "l.db", clock)
    chain = FakeChain(balance=25)
    ledger.issue([Call(H, H)] * 3)  # costs 30
    now.t = 130.0
    reporter = UsageReporter(ledger, chain, clock, grace_s=0, warn_epochs=4)
    result = reporter.run_once()
    assert result.reported == [] and result.error is not None and "top up" in result.error
    assert any("covers about" in w for w in result.warnings)
    chain.balance = 1_000
    result = reporter.run_once()
    assert result.reported == [0, 1] and chain.approvals == [30]
    assert result.warnings == []  # 970 left covers 4 epochs of 30
    chain.balance = 100
    assert any("covers about 3 epoch" in w for w in reporter.check_funds())


def test_usage_log_import_is_idempotent_and_reported(tmp_path: Path) -> None:
    now = Clock(200.0)
    clock = EpochClock(0, 60, now)
    ledger = make_ledger(tmp_path / "l.db", clock)
    log_file = tmp_path / "vllm.jsonl"
    lines = [
        {"id": "a", "timestamp": 10, "prompt": "p", "response": "r"},
        {"id": "b", "timestamp": 15, "prompt_hash": "0x" + H.hex(), "response_hash": H.hex()},
        {"id": "c", "timestamp": "1970-01-01T00:01:10Z", "prompt": "p2", "response": "r2"},
        {"timestamp": 130.5, "prompt": "p3", "response": "r3"},
    ]
    log_file.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    result = import_log(log_file, ledger)
    assert (result.booked, result.duplicates, result.first_seq, result.last_seq) == (4, 0, 1, 4)
    assert import_log(log_file, ledger).duplicates == 4
    assert [r.receipt.epoch for r in ledger.receipts()] == [0, 0, 1, 2]
    assert ledger.receipts()[0].receipt.prompt_hash == keccak(text="p")
    chain = FakeChain()
    assert UsageReporter(ledger, chain, clock, grace_s=0).run_once().reported == [0, 1, 2]
    assert chain.sent == [(0, 2, 2), (1, 1, 3), (2, 1, 4)]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": 1, "response": "x"}\n')
    with pytest.raises(LogFormatError, match=r"bad\.jsonl:1"):
        import_log(bad, ledger)
