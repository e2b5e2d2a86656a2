"""The protocol's actors as scenarios play them: creator, host, prover, oracle and arbiter.

Creators, hosts and provers are fresh keys (so a scenario replays on any chain, any number of
times) acting through :class:`agents.chain.protocol.Protocol` and its transaction sender;
receipts are signed with :mod:`agents.chain.receipts`, fingerprint commitments come from
:mod:`agents.fingerprint.commitment`. The oracle and the arbiter are the deployment's role
accounts, driven through Anvil's impersonation, so the same scenario runs on a fork of a
network whose keys we do not hold.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Self

from eth_abi.abi import encode
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3.contract.contract import ContractFunction
from web3.logs import DISCARD
from web3.types import TxParams, TxReceipt, Wei

from agents.chain.errors import TransactionFailed
from agents.chain.protocol import Protocol
from agents.chain.receipts import Receipt, sign_receipt
from agents.dev.devchain import DevChain
from agents.dev.errors import ScenarioError
from agents.fingerprint.commitment import Commitment, commit, fingerprint_salt
from agents.fingerprint.generation import Fingerprint, derive_rng, word_list

UNLIMITED = 2**255
USD = 10**6


# ---------------------------------------------------------------------- shared pieces


@dataclass(frozen=True)
class SignedReceipt:
    """A host-signed receipt, as a client (prover) keeps it."""

    receipt: Receipt
    signature: bytes

    @property
    def seq(self) -> int:
        return self.receipt.seq

    @property
    def epoch(self) -> int:
        return self.receipt.epoch


@dataclass(frozen=True)
class LeakEvidence:
    """What a leak challenge reveals: a fingerprint, its proof, where the transcript is."""

    copy_id: int
    index: int
    key: str
    response: str
    salt: bytes
    proof: list[bytes]
    evidence_cid: str

    def commitment(self, challenger: str) -> bytes:
        """``keccak256(abi.encode(challenger, copyId, index, salt, evidenceCID))``."""
        return keccak(
            encode(
                ["address", "uint256", "uint256", "bytes32", "string"],
                [challenger, self.copy_id, self.index, self.salt, self.evidence_cid],
            )
        )

    def reveal_struct(self) -> tuple[Any, ...]:
        return (
            self.copy_id,
            self.index,
            self.key.encode(),
            self.response.encode(),
            self.salt,
            self.proof,
            self.evidence_cid,
        )


@dataclass(frozen=True)
class FingerprintedCopy:
    """A delivered copy as the oracle knows it: the secret fingerprints and their commitment."""

    copy_id: int
    fingerprints: list[Fingerprint]
    seed: bytes
    commitment: Commitment

    def evidence(self, index: int, evidence_cid: str) -> LeakEvidence:
        fp = self.fingerprints[index]
        return LeakEvidence(
            self.copy_id,
            index,
            fp.key,
            fp.response,
            fingerprint_salt(self.seed, index),
            self.commitment.proof(index),
            evidence_cid,
        )


def make_fingerprints(seed: bytes, count: int) -> list[Fingerprint]:
    """``count`` random-word fingerprints (no model needed: scenarios test the chain side)."""
    words = word_list()
    rng = derive_rng(seed, "dev-scenario")
    return [
        Fingerprint(" ".join(rng.choices(words, k=8)), " ".join(rng.choices(words, k=2)))
        for _ in range(count)
    ]


def event_args(contract: Any, event: str, receipt: TxReceipt) -> dict[str, Any]:
    """The arguments of the one ``event`` a receipt carries."""
    logs = getattr(contract.events, event)().process_receipt(receipt, errors=DISCARD)
    if len(logs) != 1:
        raise ScenarioError(f"expected one {event} event, found {len(logs)}")
    return dict(logs[0]["args"])


class Actor:
    """A fresh key with ether and fee tokens, acting through :class:`Protocol`."""

    def __init__(self, dev: DevChain, name: str, account: LocalAccount) -> None:
        self.dev = dev
        self.name = name
        self.account = account
        self.protocol: Protocol = dev.protocol(account)

    @classmethod
    def funded(cls, dev: DevChain, name: str, token: int = 0) -> Self:
        return cls(dev, name, dev.new_account(token=token))

    @property
    def address(self) -> str:
        return str(self.account.address)

    def send(self, call: ContractFunction, label: str) -> TxReceipt:
        return self.protocol.sender.send(call, label=label)

    def attempt(self, call: ContractFunction, label: str) -> str | None:
        """Try a call that should fail; the custom error it failed with (None if it succeeded)."""
        try:
            self.send(call, label)
        except TransactionFailed as error:
            return error.error_name or str(error)
        return None

    def send_pending(self, call: ContractFunction, *, tip: int, gas: int = 800_000) -> str:
        """Sign and send ``call`` without waiting (automine off: it waits in the mempool).

        ``tip`` is the priority fee in wei: Anvil orders a block's transactions by it, so a
        higher tip is how a front-runner gets ahead. Gas is fixed, not estimated, so a call
        that will revert is still sent and mined (and fails on chain).
        """
        w3 = self.dev.w3
        base = int(w3.eth.get_block("latest").get("baseFeePerGas", 0))
        params: TxParams = {
            "from": self.account.address,
            "nonce": w3.eth.get_transaction_count(self.account.address, "pending"),
            "gas": gas,
            "maxPriorityFeePerGas": Wei(tip),
            "maxFeePerGas": Wei(2 * base + tip),
            "chainId": self.dev.chain_id,
        }
        tx = call.build_transaction(params)
        signed = self.account.sign_transaction(tx)  # type: ignore[arg-type]
        return str(w3.eth.send_raw_transaction(signed.raw_transaction).to_0x_hex())

    def approve_all(self) -> None:
        """Let the protocol contracts pull this actor's fee tokens (collateral, fees, bonds)."""
        for name in ("AccessManager", "UsageLedger", "ChallengeManager"):
            self.protocol.ensure_allowance(self.dev.contract(name).address, UNLIMITED)

    def claimable(self) -> int:
        return int(self.dev.ledger.functions.claimable(self.address).call())


# ---------------------------------------------------------------------- creator


class Creator(Actor):
    def publish_model(
        self, *, price_per_call: int, min_collateral: int, manifest: str = "dev-scenario-manifest"
    ) -> int:
        """Register a root model and publish (and so accept) its version 0."""
        model_id = self.protocol.register_model(
            manifest, price_per_call=price_per_call, min_collateral=min_collateral
        )
        self.protocol.publish_version(model_id, f"{manifest}-weights", manifest)
        return model_id


# ---------------------------------------------------------------------- host


class Host(Actor):
    """A licensee: stakes, serves calls (one signed receipt each), reports and pays per epoch."""

    def __init__(self, dev: DevChain, name: str, account: LocalAccount) -> None:
        super().__init__(dev, name, account)
        self.copy_id = 0
        self.issued: list[SignedReceipt] = []
        self._seq_base = 0

    def license(self, model_id: int, collateral: int, endpoint: str = "") -> int:
        self.approve_all()
        self.copy_id = self.protocol.request_access(
            model_id, 0, endpoint or f"http://{self.name}.invalid/v1", collateral
        )
        return self.copy_id

    def sign(self, receipt: Receipt) -> SignedReceipt:
        verifying = self.dev.challenges.address
        return SignedReceipt(
            receipt, sign_receipt(self.account, receipt, self.dev.chain_id, verifying)
        )

    def attach(self, copy_id: int) -> None:
        """Act for an existing copy of this host's; seqs continue after its reported lastSeq."""
        self.copy_id = copy_id
        self.issued = []
        self._seq_base = self.reported_last_seq()

    def serve(self, prompt: str, response: str = "") -> SignedReceipt:
        """Answer one call in the current epoch with the next seq; hand back its receipt."""
        seq = (self.issued[-1].seq if self.issued else self._seq_base) + 1
        receipt = Receipt.for_call(
            self.copy_id, self.dev.current_epoch(), seq, prompt, response or f"answer {seq}"
        )
        signed = self.sign(receipt)
        self.issued.append(signed)
        return signed

    def honest_last_seq(self, epoch: int) -> int:
        """The highest seq this host issued up to the end of ``epoch``."""
        return max((r.seq for r in self.issued if r.epoch <= epoch), default=self._seq_base)

    def reported_last_seq(self) -> int:
        return int(self.dev.copy_ledger(self.copy_id)["lastSeq"])

    def report(self, epoch: int, last_seq: int | None = None) -> int:
        """Report (and pay) ``epoch``; ``last_seq`` below the truth is under-reporting."""
        last = self.honest_last_seq(epoch) if last_seq is None else last_seq
        previous = self.reported_last_seq()
        last = max(last, previous)
        calls = last - previous
        receipt = self.send(
            self.dev.ledger.functions.reportUsage(self.copy_id, epoch, calls, last),
            f"reportUsage copy {self.copy_id} epoch {epoch}",
        )
        return int(event_args(self.dev.ledger, "UsageReported", receipt)["fee"])

    def report_through(self, epoch: int) -> int:
        """Report every unreported epoch up to ``epoch`` honestly; the fees paid."""
        first = int(self.dev.copy_ledger(self.copy_id)["nextEpoch"])
        return sum(self.report(e) for e in range(first, epoch + 1))

    def request_exit(self) -> int:
        """Ask to exit; returns when the collateral becomes withdrawable."""
        receipt = self.send(self.dev.access.functions.requestExit(self.copy_id), "requestExit")
        return int(event_args(self.dev.access, "ExitRequested", receipt)["withdrawableAt"])

    def withdraw(self) -> int:
        receipt = self.send(self.dev.access.functions.withdraw(self.copy_id), "withdraw")
        return int(event_args(self.dev.access, "Withdrawn", receipt)["amount"])

    def dispute(self, challenge_id: int) -> None:
        self.send(self.dev.challenges.functions.disputeLeak(challenge_id), "disputeLeak")


# ---------------------------------------------------------------------- prover


@dataclass(frozen=True)
class Slash:
    challenge_id: int
    kind: int
    slashed: int
    reward: int


class Prover(Actor):
    """A bonded prover: keeps the receipts of its calls, compares, challenges."""

    def __init__(self, dev: DevChain, name: str, account: LocalAccount) -> None:
        super().__init__(dev, name, account)
        self.receipts: list[SignedReceipt] = []

    def register(self) -> None:
        self.approve_all()
        self.send(self.dev.challenges.functions.registerProver(), "registerProver")

    def call(self, host: Host, prompt: str, response: str = "") -> SignedReceipt:
        """Make one paid call to ``host`` and keep its receipt."""
        signed = host.serve(prompt, response)
        self.receipts.append(signed)
        return signed

    def under_reported(self) -> list[SignedReceipt]:
        """Kept receipts whose seq exceeds what the host reported for their (reported) epoch."""
        found = []
        for signed in self.receipts:
            reported, bound = self.dev.ledger.functions.seqBound(
                signed.receipt.copy_id, signed.epoch
            ).call()
            if reported and signed.seq > int(bound):
                found.append(signed)
        return found

    def _slash(self, receipt: TxReceipt) -> Slash:
        args = event_args(self.dev.challenges, "ProvableChallenge", receipt)
        return Slash(
            int(args["challengeId"]), int(args["kind"]), int(args["slashed"]), int(args["reward"])
        )

    def challenge_under_report(self, signed: SignedReceipt) -> Slash:
        call = self.dev.challenges.functions.challengeUnderReport(
            signed.receipt.as_tuple(), signed.signature
        )
        return self._slash(self.send(call, "challengeUnderReport"))

    def under_report_call(self, signed: SignedReceipt) -> ContractFunction:
        return self.dev.challenges.functions.challengeUnderReport(
            signed.receipt.as_tuple(), signed.signature
        )

    def challenge_equivocation(self, a: SignedReceipt, b: SignedReceipt) -> Slash:
        call = self.dev.challenges.functions.challengeEquivocation(
            a.receipt.as_tuple(), a.signature, b.receipt.as_tuple(), b.signature
        )
        return self._slash(self.send(call, "challengeEquivocation"))

    def commit_leak(self, evidence: LeakEvidence, commitment: bytes | None = None) -> int:
        """Commit to ``evidence`` (or to a ``commitment`` copied from someone else)."""
        digest = commitment if commitment is not None else evidence.commitment(self.address)
        receipt = self.send(self.dev.challenges.functions.commitLeak(digest), "commitLeak")
        return int(event_args(self.dev.challenges, "LeakCommitted", receipt)["challengeId"])

    def reveal_call(self, challenge_id: int, evidence: LeakEvidence) -> ContractFunction:
        return self.dev.challenges.functions.revealLeak(challenge_id, evidence.reveal_struct())

    def reveal_leak(self, challenge_id: int, evidence: LeakEvidence) -> None:
        self.wait_for_reveal(challenge_id)
        self.send(self.reveal_call(challenge_id, evidence), "revealLeak")

    def wait_for_reveal(self, challenge_id: int) -> None:
        """A reveal must land in a later block than its commit (and gas is estimated against
        the head): on an automining Anvil no block comes by itself, so mine one."""
        commit_block = int(self.dev.leak(challenge_id)["commitBlock"])
        if self.dev.node.block_number() <= commit_block:
            self.dev.node.mine()

    def finalize(self, challenge_id: int) -> None:
        self.send(self.dev.challenges.functions.finalizeLeak(challenge_id), "finalizeLeak")


# ---------------------------------------------------------------------- role accounts


@dataclass
class Oracle:
    """The deployment's oracle account (impersonated): fingerprints and delivers copies."""

    dev: DevChain
    fingerprint_count: int = 16
    delivered: dict[int, FingerprintedCopy] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return self.dev.role("oracle")

    def deliver(self, copy_id: int) -> FingerprintedCopy:
        seed = os.urandom(32)
        fingerprints = make_fingerprints(seed, self.fingerprint_count)
        commitment = commit(copy_id, fingerprints, seed)
        call = self.dev.access.functions.deliverCopy(
            copy_id, commitment.root, len(fingerprints), f"dev-scenario-copy-{copy_id}"
        )
        self.dev.send_as(self.address, call, label="deliverCopy")
        copy = FingerprintedCopy(copy_id, fingerprints, seed, commitment)
        self.delivered[copy_id] = copy
        return copy


@dataclass
class Arbiter:
    """The deployment's arbiter account (impersonated): rules on disputed leak challenges."""

    dev: DevChain

    def rule(self, challenge_id: int, leaked: bool) -> None:
        call = self.dev.challenges.functions.rule(challenge_id, leaked)
        self.dev.send_as(self.dev.role("arbiter"), call, label="rule")
