"""Provable challenges: receipts against reports, no arbiter, slash at once."""

from __future__ import annotations

from agents.chain.receipts import Receipt
from agents.dev.actors import USD
from agents.dev.devchain import COPY_STATES
from agents.dev.scenarios.common import (
    COLLATERAL,
    PRICE,
    bonded_prover,
    licensed_copy,
    reward_for,
    slash_amount,
)
from agents.dev.scenarios.registry import ScenarioContext, scenario

KIND_UNDER_REPORT = 0
KIND_EQUIVOCATION = 1


@scenario(
    "honest-host",
    title="Honest host: reports every call, no challenge succeeds",
    expected="fees = calls x price paid every epoch; every challenge reverts; no slash",
)
def honest_host(ctx: ScenarioContext) -> None:
    dev = ctx.dev
    s = licensed_copy(ctx)
    prover = bonded_prover(ctx)
    lineage_before = int(dev.ledger.functions.lineageAccrued(s.model_id).call())
    fees = 0
    calls = 0
    for round_, count in enumerate((3, 5, 0)):
        epoch = dev.current_epoch()
        for i in range(count):
            prover.call(s.host, f"round {round_} question {i}")
        calls += count
        dev.to_epoch_end(epoch)
        fees += s.host.report_through(epoch)
        ctx.step(
            f"epoch {epoch}: prover made {count} calls; host reported lastSeq "
            f"{s.host.reported_last_seq()}"
        )
    ctx.fact("calls", calls)
    ctx.fact("feesPaid", fees)

    best = max(prover.receipts, key=lambda r: r.seq)
    under = prover.attempt(prover.under_report_call(best), "challengeUnderReport")
    missed = prover.attempt(
        dev.challenges.functions.challengeMissedReport(s.copy_id, best.epoch),
        "challengeMissedReport",
    )
    ctx.step(
        f"prover's challenges with its highest receipt (seq {best.seq}) fail: {under}, {missed}"
    )
    cut_bps = sum(int(dev.ledger.functions.config().call()[i]) for i in range(3))
    copy = dev.copy(s.copy_id)
    ctx.expect("receipts above the reported lastSeq", 0, len(prover.under_reported()))
    ctx.expect("fees paid (calls x price)", calls * PRICE, fees)
    ctx.expect(
        "lineage accrued (fees less protocol cut)",
        fees - fees * cut_bps // 10_000,
        int(dev.ledger.functions.lineageAccrued(s.model_id).call()) - lineage_before,
    )
    ctx.expect("under-report challenge", "NotUnderReported", under)
    ctx.expect("missed-report challenge", "EpochNotMissed", missed)
    ctx.expect("collateral slashed", 0, int(copy["slashed"]))
    ctx.expect("copy state", "Active", COPY_STATES[int(copy["state"])])
    ctx.expect("prover's claimable", 0, prover.claimable())


@scenario(
    "under-reporting-host",
    title="Under-reporting host: a receipt beyond the reported lastSeq",
    expected="challengeUnderReport slashes underReportSlashBps of the collateral at once; "
    "the prover gets the capped reward; a second challenge of the same epoch reverts",
)
def under_reporting_host(ctx: ScenarioContext) -> None:
    dev = ctx.dev
    s = licensed_copy(ctx)
    prover = bonded_prover(ctx)
    epoch = dev.current_epoch()
    for i in range(10):
        prover.call(s.host, f"question {i}")
    dev.to_epoch_end(epoch)
    s.host.report_through(epoch - 1)
    fee = s.host.report(epoch, last_seq=6)
    ctx.step(
        f"host served 10 calls in epoch {epoch} but reported lastSeq 6 (paid {fee / USD} mUSD)"
    )

    evidence = prover.under_reported()
    ctx.step(
        f"prover holds {len(evidence)} receipts above lastSeq 6: seqs {[r.seq for r in evidence]}"
    )
    slash = prover.challenge_under_report(evidence[0])
    again = prover.attempt(prover.under_report_call(evidence[1]), "challengeUnderReport")
    ctx.step(
        f"challenge {slash.challenge_id} slashed {slash.slashed / USD} mUSD; a second one "
        f"for the same epoch: {again}"
    )
    ctx.fact("challengeId", slash.challenge_id)

    expected_slash = slash_amount(COLLATERAL, int(dev.params()["underReportSlashBps"]))
    copy = dev.copy(s.copy_id)
    ctx.expect("receipts above the reported lastSeq", 4, len(evidence))
    ctx.expect("challenge kind", KIND_UNDER_REPORT, slash.kind)
    ctx.expect("collateral slashed", expected_slash, int(copy["slashed"]))
    ctx.expect("collateral left", COLLATERAL - expected_slash, int(copy["collateral"]))
    ctx.expect("prover's reward (claimable)", reward_for(ctx, expected_slash), prover.claimable())
    ctx.expect("second challenge of the epoch", "AlreadyPunished", again)


@scenario(
    "equivocating-host",
    title="Equivocating host: two different receipts with the same seq",
    expected="challengeEquivocation slashes underReportSlashBps of the collateral at once, "
    "no report needed; the prover gets the capped reward",
)
def equivocating_host(ctx: ScenarioContext) -> None:
    dev = ctx.dev
    s = licensed_copy(ctx)
    prover = bonded_prover(ctx)
    for i in range(4):
        prover.call(s.host, f"question {i}")
    first = prover.receipts[-1]
    # The host rewinds its counter to hide a call: a second receipt reuses seq 4.
    second = s.host.sign(
        Receipt.for_call(s.copy_id, first.epoch, first.seq, "another question", "another answer")
    )
    prover.receipts.append(second)
    ctx.step(f"host signed two different receipts with seq {first.seq} in epoch {first.epoch}")
    slash = prover.challenge_equivocation(first, second)
    same = prover.attempt(
        dev.challenges.functions.challengeEquivocation(
            first.receipt.as_tuple(), first.signature, first.receipt.as_tuple(), first.signature
        ),
        "challengeEquivocation",
    )
    ctx.step(f"challenge {slash.challenge_id} slashed {slash.slashed / USD} mUSD")
    ctx.fact("challengeId", slash.challenge_id)

    expected_slash = slash_amount(COLLATERAL, int(dev.params()["underReportSlashBps"]))
    copy = dev.copy(s.copy_id)
    ctx.expect("challenge kind", KIND_EQUIVOCATION, slash.kind)
    ctx.expect("collateral slashed", expected_slash, int(copy["slashed"]))
    ctx.expect("prover's reward (claimable)", reward_for(ctx, expected_slash), prover.claimable())
    ctx.expect("a receipt paired with itself", "NotEquivocation", same)


@scenario(
    "host-exits-before-challenge",
    title="Host exits just before a challenge: stake still slashable within the exit delay",
    expected="after requestExit the copy is Exiting, withdraw reverts until exitDelay has "
    "passed, the under-report challenge still slashes, the host withdraws only the rest",
)
def host_exits_before_challenge(ctx: ScenarioContext) -> None:
    dev = ctx.dev
    s = licensed_copy(ctx)
    prover = bonded_prover(ctx)
    epoch = dev.current_epoch()
    for i in range(10):
        prover.call(s.host, f"question {i}")
    dev.to_epoch_end(epoch)
    s.host.report_through(epoch - 1)
    s.host.report(epoch, last_seq=4)
    withdrawable_at = s.host.request_exit()
    early = s.host.attempt(dev.access.functions.withdraw(s.copy_id), "withdraw")
    ctx.step(
        f"host under-reported epoch {epoch} (lastSeq 4 of 10), asked to exit at once; "
        f"withdraw: {early}"
    )
    # The prover challenges late: one minute before the exit delay ends.
    dev.node.warp_to(withdrawable_at - 60)
    state_at_challenge = dev.copy(s.copy_id)["state"]
    slash = prover.challenge_under_report(prover.under_reported()[0])
    ctx.step(
        f"{withdrawable_at - dev.node.timestamp()}s before the exit delay ends, the "
        f"prover's challenge {slash.challenge_id} slashed {slash.slashed / USD} mUSD"
    )
    dev.node.warp_to(withdrawable_at)
    withdrawn = s.host.withdraw()
    ctx.step(f"after the exit delay the host withdrew {withdrawn / USD} mUSD")
    ctx.fact("exitDelay", int(dev.access.functions.exitDelay().call()))
    ctx.fact("maxChallengeSpan", int(dev.challenges.functions.maxChallengeSpan().call()))

    expected_slash = slash_amount(COLLATERAL, int(dev.params()["underReportSlashBps"]))
    ctx.expect("withdraw before the exit delay", "ExitDelayNotOver", early)
    ctx.expect("copy state when challenged", "Exiting", COPY_STATES[int(state_at_challenge)])
    ctx.expect("collateral slashed", expected_slash, int(dev.copy(s.copy_id)["slashed"]))
    ctx.expect("withdrawn after the delay", COLLATERAL - expected_slash, withdrawn)
    ctx.expect("prover's reward (claimable)", reward_for(ctx, expected_slash), prover.claimable())
    ctx.expect("copy state at the end", "Withdrawn", COPY_STATES[int(dev.copy(s.copy_id)["state"])])


@scenario(
    "missed-report-host",
    title="Host stops reporting: a closed epoch never reported",
    expected="before reportGrace the challenge reverts; after it, challengeMissedReport slashes "
    "missedReportSlashBps of the collateral, once per epoch",
)
def missed_report_host(ctx: ScenarioContext) -> None:
    dev = ctx.dev
    s = licensed_copy(ctx)
    prover = bonded_prover(ctx)
    epoch = dev.current_epoch()
    prover.call(s.host, "a question the host will never report")
    missed = dev.challenges.functions.challengeMissedReport(s.copy_id, epoch)
    dev.to_epoch_end(epoch)
    early = prover.attempt(missed, "challengeMissedReport")
    dev.to_epoch_end(epoch, plus_grace=True)  # the grace comes from the contract's params
    ctx.step(f"host never reported epoch {epoch}; challenged within reportGrace: {early}")
    slash = prover.send(missed, "challengeMissedReport")
    twice = prover.attempt(missed, "challengeMissedReport")
    ctx.step(f"after the grace the challenge slashed; again: {twice}")
    ctx.fact("challengeTx", slash["transactionHash"].to_0x_hex())

    expected_slash = slash_amount(COLLATERAL, int(dev.params()["missedReportSlashBps"]))
    ctx.expect("challenge within the grace", "ReportGraceNotOver", early)
    ctx.expect("collateral slashed", expected_slash, int(dev.copy(s.copy_id)["slashed"]))
    ctx.expect("prover's reward (claimable)", reward_for(ctx, expected_slash), prover.claimable())
    ctx.expect("the same epoch again", "AlreadyPunished", twice)
