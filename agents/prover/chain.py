"""The prover's view of the contracts: ChallengeManager, AccessManager, UsageLedger / FeeRouter.

Every transaction goes through :class:`agents.chain.transactions.TransactionSender` (via
:class:`agents.chain.protocol.Protocol`); reads are plain ``eth_call``. Time is the chain's:
windows, epochs and deadlines are compared with the latest block's timestamp, never the wall
clock, so the prover agrees with the contracts on a chain whose clock was moved.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from enum import IntEnum
from typing import Any

from eth_abi.abi import encode
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.types import TxReceipt

from agents.chain.deployments import Deployment
from agents.chain.protocol import CopyInfo, Protocol
from agents.chain.receipts import Receipt

log = logging.getLogger(__name__)


class CopyState(IntEnum):
    NONE = 0
    REQUESTED = 1
    ACTIVE = 2
    EXITING = 3
    WITHDRAWN = 4


class LeakState(IntEnum):
    NONE = 0
    COMMITTED = 1
    REVEALED = 2
    DISPUTED = 3
    UPHELD = 4
    REJECTED = 5
    TIMED_OUT = 6
    EXPIRED = 7


CHALLENGEABLE = (CopyState.ACTIVE, CopyState.EXITING)


def leak_commitment(
    challenger: str, copy_id: int, index: int, salt: bytes, evidence_cid: str
) -> bytes:
    """``keccak256(abi.encode(challenger, copyId, index, salt, evidenceCID))`` as
    ChallengeManager.revealLeak recomputes it (address, uint256, uint256, bytes32, string)."""
    return keccak(
        encode(
            ["address", "uint256", "uint256", "bytes32", "string"],
            [Web3.to_checksum_address(challenger), copy_id, index, salt, evidence_cid],
        )
    )


@dataclass(frozen=True)
class ChallengeParams:
    prover_bond: int
    challenge_bond: int
    counter_bond: int
    challenger_reward_cap: int
    report_grace: int
    reveal_window: int
    liveness: int
    arbitration_window: int
    under_report_slash_bps: int
    missed_report_slash_bps: int
    leak_slash_bps: int
    challenger_reward_bps: int
    bond_forfeit_bps: int
    arbiter: str


@dataclass(frozen=True)
class LeakInfo:
    challenger: str
    state: LeakState
    commit_block: int
    deadline: int
    host: str
    bond: int
    counter_bond: int
    copy_id: int
    index: int
    commitment: bytes


@dataclass(frozen=True)
class CopyLedgerInfo:
    host: str
    model_id: int
    first_epoch: int
    end_epoch: int
    next_epoch: int
    last_seq: int


@dataclass(frozen=True)
class Submitted:
    """A mined challenge transaction and what it produced."""

    challenge_id: int
    tx_hash: str
    block_number: int
    block_hash: str
    slashed: int = 0
    reward: int = 0


class ProverChain:
    """One prover account's calls into one deployment."""

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        self.w3 = protocol.w3
        self.deployment: Deployment = protocol.deployment
        self.account = protocol.account
        self.address = str(protocol.account.address)
        self.sender = protocol.sender
        self.manager = protocol.contract("ChallengeManager")
        self.access = protocol.contract("AccessManager")
        self.ledger = protocol.contract("UsageLedger")
        self.token = self.w3.eth.contract(
            address=self.ledger.functions.feeToken().call(),
            abi=self.deployment.abis["MockUSD"],
        )
        self._schedule: tuple[int, int] | None = None

    @property
    def chain_id(self) -> int:
        return self.deployment.chain_id

    @property
    def manager_address(self) -> str:
        return str(self.manager.address)

    # ------------------------------------------------------------------ time

    def head(self) -> tuple[int, int]:
        """(block number, timestamp) of the latest block."""
        block = self.w3.eth.get_block("latest")
        return int(block["number"]), int(block["timestamp"])

    def now(self) -> int:
        return self.head()[1]

    def block_hash(self, number: int) -> str | None:
        try:
            return HexBytes(self.w3.eth.get_block(number)["hash"]).to_0x_hex()
        except Exception:
            return None

    def epoch_schedule(self) -> tuple[int, int]:
        if self._schedule is None:
            self._schedule = (
                int(self.ledger.functions.genesis().call()),
                int(self.ledger.functions.epochLength().call()),
            )
        return self._schedule

    def epoch_at(self, timestamp: int) -> int:
        genesis, length = self.epoch_schedule()
        return max(timestamp - genesis, 0) // length

    def epoch_end(self, epoch: int) -> int:
        genesis, length = self.epoch_schedule()
        return genesis + (epoch + 1) * length

    # ------------------------------------------------------------------ reads

    def params(self) -> ChallengeParams:
        raw = list(self.manager.functions.params().call())
        names = [f.name for f in fields(ChallengeParams)]
        values: dict[str, Any] = {n: int(v) for n, v in zip(names[:-1], raw[:-1], strict=True)}
        return ChallengeParams(**values, arbiter=str(raw[-1]))

    def is_prover(self, address: str | None = None) -> bool:
        return bool(self.manager.functions.isProver(address or self.address).call())

    def prover_bond(self, address: str | None = None) -> int:
        return int(self.manager.functions.proverBondOf(address or self.address).call())

    def open_challenges(self, address: str | None = None) -> int:
        return int(self.manager.functions.openChallengesOf(address or self.address).call())

    def copy(self, copy_id: int) -> CopyInfo:
        return self.protocol.copy(copy_id)

    def copy_ledger(self, copy_id: int) -> CopyLedgerInfo:
        raw = self.ledger.functions.copyLedger(copy_id).call()
        return CopyLedgerInfo(str(raw[0]), *(int(v) for v in raw[1:]))

    def seq_bound(self, copy_id: int, epoch: int) -> tuple[bool, int]:
        reported, bound = self.ledger.functions.seqBound(copy_id, epoch).call()
        return bool(reported), int(bound)

    def under_report_punished(self, copy_id: int, epoch: int) -> bool:
        return bool(self.manager.functions.underReportPunished(copy_id, epoch).call())

    def equivocation_punished(self, copy_id: int, seq: int) -> bool:
        return bool(self.manager.functions.equivocationPunished(copy_id, seq).call())

    def missed_report_punished(self, copy_id: int, epoch: int) -> bool:
        return bool(self.manager.functions.missedReportPunished(copy_id, epoch).call())

    def key_revealed(self, copy_id: int, index: int) -> bool:
        return bool(self.manager.functions.keyRevealed(copy_id, index).call())

    def leak(self, challenge_id: int) -> LeakInfo:
        raw = self.manager.functions.getLeak(challenge_id).call()
        return LeakInfo(
            challenger=str(raw[0]),
            state=LeakState(int(raw[1])),
            commit_block=int(raw[2]),
            deadline=int(raw[3]),
            host=str(raw[4]),
            bond=int(raw[5]),
            counter_bond=int(raw[6]),
            copy_id=int(raw[7]),
            index=int(raw[8]),
            commitment=bytes(raw[9]),
        )

    def receipt_digest(self, receipt: Receipt) -> bytes:
        return bytes(self.manager.functions.receiptDigest(receipt.as_tuple()).call())

    def token_balance(self, address: str | None = None) -> int:
        return int(self.token.functions.balanceOf(address or self.address).call())

    def token_decimals(self) -> int:
        return int(self.token.functions.decimals().call())

    def claimable(self, address: str | None = None) -> int:
        return int(self.ledger.functions.claimable(address or self.address).call())

    def accounting(self, address: str | None = None) -> tuple[int, int]:
        accrued, claimed = self.ledger.functions.accounting(address or self.address).call()
        return int(accrued), int(claimed)

    def pending_prover_pool(self) -> int:
        """What ``harvestProver`` would credit now (a simulated call: nothing is sent)."""
        if not self.is_prover():
            return 0
        return int(self.ledger.functions.harvestProver(self.address).call({"from": self.address}))

    # ------------------------------------------------------------------ events

    def logs(self, contract: str, event: str, **filters: Any) -> list[Any]:
        source = {
            "ChallengeManager": self.manager,
            "AccessManager": self.access,
            "UsageLedger": self.ledger,
        }[contract]
        from_block = filters.pop("from_block", self.deployment.deploy_block)
        return list(
            getattr(source.events, event)().get_logs(
                from_block=from_block, argument_filters=filters or None
            )
        )

    def endpoint_of(self, copy_id: int) -> str | None:
        found = self.logs("AccessManager", "AccessRequested", copyId=copy_id)
        return str(found[-1]["args"]["endpoint"]) if found else None

    # ------------------------------------------------------------------ transactions

    def resync_nonce(self) -> None:
        """Forget the locally tracked nonce (after a reorg dropped our transactions).

        TransactionSender only resynchronises after a send error; a dropped transaction
        would otherwise leave a nonce gap and every later transaction waiting forever.
        """
        self.sender._next_nonce = None

    def ensure_allowance(self, amount: int) -> None:
        spender = self.manager.address
        if int(self.token.functions.allowance(self.address, spender).call()) < amount:
            self.sender.send(self.token.functions.approve(spender, amount), label="approve bond")

    def register(self) -> int:
        bond = self.params().prover_bond
        self.ensure_allowance(bond)
        self.sender.send(self.manager.functions.registerProver(), label="registerProver")
        return bond

    def unregister(self) -> None:
        self.sender.send(self.manager.functions.unregisterProver(), label="unregisterProver")

    def challenge_under_report(self, receipt: Receipt, signature: bytes) -> Submitted:
        tx = self.sender.send(
            self.manager.functions.challengeUnderReport(receipt.as_tuple(), signature),
            label=f"challengeUnderReport copy {receipt.copy_id} epoch {receipt.epoch}",
        )
        return self._provable(tx)

    def challenge_equivocation(
        self, a: Receipt, sig_a: bytes, b: Receipt, sig_b: bytes
    ) -> Submitted:
        tx = self.sender.send(
            self.manager.functions.challengeEquivocation(a.as_tuple(), sig_a, b.as_tuple(), sig_b),
            label=f"challengeEquivocation copy {a.copy_id} seq {a.seq}",
        )
        return self._provable(tx)

    def challenge_missed_report(self, copy_id: int, epoch: int) -> Submitted:
        tx = self.sender.send(
            self.manager.functions.challengeMissedReport(copy_id, epoch),
            label=f"challengeMissedReport copy {copy_id} epoch {epoch}",
        )
        return self._provable(tx)

    def _provable(self, tx: TxReceipt) -> Submitted:
        [event] = self.manager.events.ProvableChallenge().process_receipt(tx)
        args = event["args"]
        return Submitted(
            int(args["challengeId"]),
            tx["transactionHash"].to_0x_hex(),
            int(tx["blockNumber"]),
            HexBytes(tx["blockHash"]).to_0x_hex(),
            slashed=int(args["slashed"]),
            reward=int(args["reward"]),
        )

    def commit_leak(self, commitment: bytes) -> Submitted:
        self.ensure_allowance(self.params().challenge_bond)
        tx = self.sender.send(self.manager.functions.commitLeak(commitment), label="commitLeak")
        [event] = self.manager.events.LeakCommitted().process_receipt(tx)
        return Submitted(
            int(event["args"]["challengeId"]),
            tx["transactionHash"].to_0x_hex(),
            int(tx["blockNumber"]),
            HexBytes(tx["blockHash"]).to_0x_hex(),
        )

    def find_commit(self, commitment: bytes, from_block: int) -> Submitted | None:
        """A commit of ours with this commitment mined since ``from_block`` (crash repair)."""
        for entry in self.logs(
            "ChallengeManager", "LeakCommitted", challenger=self.address, from_block=from_block
        ):
            if bytes(entry["args"]["commitment"]) == commitment:
                return Submitted(
                    int(entry["args"]["challengeId"]),
                    entry["transactionHash"].to_0x_hex(),
                    int(entry["blockNumber"]),
                    HexBytes(entry["blockHash"]).to_0x_hex(),
                )
        return None

    def reveal_leak(self, challenge_id: int, reveal: tuple[Any, ...]) -> str:
        tx = self.sender.send(
            self.manager.functions.revealLeak(challenge_id, reveal),
            label=f"revealLeak {challenge_id}",
        )
        return str(tx["transactionHash"].to_0x_hex())

    def finalize_leak(self, challenge_id: int) -> str:
        tx = self.sender.send(
            self.manager.functions.finalizeLeak(challenge_id), label=f"finalizeLeak {challenge_id}"
        )
        return str(tx["transactionHash"].to_0x_hex())

    def slash_of(self, challenge_id: int) -> tuple[int, int] | None:
        """(amount slashed, challenger reward) of challenge ``challenge_id``, if it slashed."""
        found = self.logs("AccessManager", "Slashed", challengeId=challenge_id)
        if not found:
            return None
        args = found[-1]["args"]
        return int(args["amount"]), int(args["reward"])

    def harvest_prover(self) -> int:
        amount = self.pending_prover_pool()
        if amount:
            self.sender.send(
                self.ledger.functions.harvestProver(self.address), label="harvestProver"
            )
        return amount

    def claim_all(self) -> int:
        amount = self.claimable()
        if amount:
            self.sender.send(self.ledger.functions.claimAll(), label="claimAll")
        return amount
