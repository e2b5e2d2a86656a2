"""Stateful property test: random legal sequences over the whole protocol, invariants after
every step (hypothesis RuleBasedStateMachine on a real Anvil through ape).

Sizes: OML_STATEFUL_EXAMPLES sequences (default 8) of up to OML_STATEFUL_STEPS steps
(default 10) in `make test`; the nightly/benchmark setting raises both.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from hypothesis.stateful import run_state_machine_as_test as run_machine
from omlkit import MIN_COLLATERAL, USD, Fingerprints, World, commitment, signed_receipt

EXAMPLES = int(os.environ.get("OML_STATEFUL_EXAMPLES", "8"))
STEPS = int(os.environ.get("OML_STATEFUL_STEPS", "10"))
WHOLE = 10**18
STATS = {"sequences": 0, "steps": 0}


def test_protocol_invariants(accounts: Any, chain: Any) -> None:
    w = World(accounts, chain)
    creators, hosts, provers = accounts[4:6], accounts[5:8], accounts[8:10]
    people = list(accounts[4:10])
    for a in people:
        w.fund(a, 90_000 * USD)
    for p in provers:
        w.cm.registerProver(sender=p)

    class Protocol(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snapshot = chain.snapshot()
            STATS["sequences"] += 1
            self.models: list[int] = []
            self.copies: dict[int, dict[str, Any]] = {}
            self.revealed: set[tuple[int, int]] = set()
            self.withdrawn_paid: dict[Any, int] = {}

        def teardown(self) -> None:
            chain.restore(self.snapshot)

        # ------------------------------------------------------------- moves
        @rule(c=st.integers(0, 1), share=st.integers(1, 5000), derive=st.booleans())
        def register(self, c: int, share: int, derive: bool) -> None:
            STATS["steps"] += 1
            if derive and self.models:
                parent = self.models[share % len(self.models)]
                if w.registry.modelInfo(parent).depth < 8:
                    self.models.append(w.register(creators[c], [parent], [share]))
                    return
            self.models.append(w.register(creators[c]))

        @precondition(lambda self: self.models)
        @rule(h=st.integers(0, 2), m=st.integers(0, 100), extra=st.integers(0, 100))
        def license(self, h: int, m: int, extra: int) -> None:
            STATS["steps"] += 1
            host = hosts[h]
            copy_id = w.request(
                host, self.models[m % len(self.models)], MIN_COLLATERAL + extra * USD
            )
            fp = w.deliver(copy_id, 4)
            self.copies[copy_id] = {"host": host, "fp": fp, "deposit": MIN_COLLATERAL + extra * USD}

        @rule(seconds=st.integers(1, 200))
        def wait(self, seconds: int) -> None:
            STATS["steps"] += 1
            w.sleep(seconds)

        @precondition(lambda self: self.copies)
        @rule(i=st.integers(0, 100), calls=st.integers(0, 500))
        def report(self, i: int, calls: int) -> None:
            STATS["steps"] += 1
            copy_id = list(self.copies)[i % len(self.copies)]
            info = w.ledger.copyLedger(copy_id)
            if w.access.getCopy(copy_id).state not in (2, 3) or info.nextEpoch > info.endEpoch:
                return
            if w.ledger.epochEnd(info.nextEpoch) > w.now():
                return
            host = self.copies[copy_id]["host"]
            w.ledger.reportUsage(copy_id, info.nextEpoch, calls, info.lastSeq + calls, sender=host)

        @precondition(lambda self: self.models)
        @rule(m=st.integers(0, 100), who=st.integers(0, 5))
        def settle_and_harvest(self, m: int, who: int) -> None:
            STATS["steps"] += 1
            model = self.models[m % len(self.models)]
            w.ledger.harvest(model, people[who], sender=people[who])

        @rule(who=st.integers(0, 5), fraction=st.integers(1, 4))
        def claim(self, who: int, fraction: int) -> None:
            STATS["steps"] += 1
            account = people[who]
            if who == 0:
                w.ledger.splitProtocolFees(sender=account)
            have = int(w.ledger.claimable(account))
            if have:
                w.ledger.claim(max(1, have // fraction), sender=account)

        @precondition(lambda self: self.models)
        @rule(m=st.integers(0, 100), to=st.integers(0, 5), part=st.integers(1, 10))
        def transfer_shares(self, m: int, to: int, part: int) -> None:
            STATS["steps"] += 1
            model = self.models[m % len(self.models)]
            owner = w.registry.ownerOf(model)
            have = int(w.gov.sharesOf(model, owner))
            if have:
                w.gov.transferShares(model, people[to], have // part, sender=owner)

        @precondition(lambda self: self.copies)
        @rule(i=st.integers(0, 100), p=st.integers(0, 1))
        def under_report(self, i: int, p: int) -> None:
            STATS["steps"] += 1
            copy_id = list(self.copies)[i % len(self.copies)]
            info = w.ledger.copyLedger(copy_id)
            epoch = info.nextEpoch - 1
            if w.access.getCopy(copy_id).state not in (2, 3) or epoch < info.firstEpoch:
                return
            if w.cm.underReportPunished(copy_id, epoch):
                return
            host = self.copies[copy_id]["host"]
            bound = w.ledger.seqBound(copy_id, epoch).bound
            receipt, sig = signed_receipt(host, w.cm.address, copy_id, epoch, bound + 1)
            w.cm.challengeUnderReport(receipt, sig, sender=provers[p])

        @precondition(lambda self: self.copies)
        @rule(i=st.integers(0, 100), index=st.integers(0, 3), p=st.integers(0, 1))
        def leak(self, i: int, index: int, p: int) -> None:
            STATS["steps"] += 1
            copy_id = list(self.copies)[i % len(self.copies)]
            if w.access.getCopy(copy_id).state not in (2, 3):
                return
            fp: Fingerprints = self.copies[copy_id]["fp"]
            prover = provers[p]
            cid = w.cm.commitLeak(
                commitment(prover.address, copy_id, index, fp.salts[index], "ev"), sender=prover
            ).return_value
            if (copy_id, index) in self.revealed:
                return  # burned: the commit will expire
            w.cm.revealLeak(cid, fp.reveal(index, "ev"), sender=prover)
            self.revealed.add((copy_id, index))
            w.sleep(int(w.cm.params().liveness) + 1)
            w.cm.finalizeLeak(cid, sender=prover)

        @precondition(lambda self: self.copies)
        @rule(i=st.integers(0, 100))
        def exit_and_withdraw(self, i: int) -> None:
            STATS["steps"] += 1
            copy_id = list(self.copies)[i % len(self.copies)]
            copy = w.access.getCopy(copy_id)
            host = self.copies[copy_id]["host"]
            if copy.state == 2:
                w.access.requestExit(copy_id, sender=host)
            elif (
                copy.state == 3
                and copy.openChallenges == 0
                and w.now() >= copy.exitRequestedAt + w.access.exitDelay()
            ):
                w.access.withdraw(copy_id, sender=host)

        # ------------------------------------------------------------- invariants
        @invariant()
        def solvent(self) -> None:
            owed = w.liabilities(self.models, [*people, w.treasury, w.infra])
            assert w.balances() == owed

        @invariant()
        def claimed_le_accrued(self) -> None:
            for a in [*people, w.treasury, w.infra]:
                accrued, claimed = w.ledger.accounting(a)
                assert claimed <= accrued

        @invariant()
        def shares_whole(self) -> None:
            for m in self.models:
                assert sum(int(w.gov.sharesOf(m, a)) for a in people) == WHOLE

        @invariant()
        def slashed_le_collateral(self) -> None:
            for copy_id, info in self.copies.items():
                copy = w.access.getCopy(copy_id)
                assert copy.slashed <= info["deposit"]
                if copy.state != 4:
                    assert copy.collateral + copy.slashed == info["deposit"]

        @invariant()
        def keys_revealed_once(self) -> None:
            for copy_id, index in self.revealed:
                assert w.cm.keyRevealed(copy_id, index)

    run_machine(
        Protocol,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=os.environ.get("OML_STATEFUL_RANDOM") is None,
            phases=[Phase.explicit, Phase.generate],
        ),
    )
    print(f"stateful: {STATS['sequences']} sequences, {STATS['steps']} steps")
    assert STATS["steps"] > 0
