"""Helpers shared by the contract suites: a deployed protocol and the moves a test makes."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_abi import encode
from eth_account import Account
from eth_keys import keys
from eth_utils import keccak

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import deploy as deploy_script  # noqa: E402

from agents.chain.receipts import Receipt, sign_receipt  # noqa: E402

USD = 10**6
EPOCH = 60
PROFILE = deploy_script.DEV._replace(epoch_length=EPOCH)
PRICE = 2 * USD // 100  # 0.02 mUSD per call
MIN_COLLATERAL = 500 * USD
MANIFEST = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
WEIGHTS = "bafkreidtuosuw37f5xmn65b3ksdiikajy7pwjjslzj2lxxz2vc4wdy3zku"
ENDPOINT = "http://127.0.0.1:8101/v1"
COPY_CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


# ----------------------------------------------------------------- fingerprints


def leaf(copy_id: int, index: int, key: bytes, response: bytes, salt: bytes) -> bytes:
    inner = keccak(
        encode(
            ["uint256", "uint256", "bytes32", "bytes32", "bytes32"],
            [copy_id, index, keccak(key), keccak(response), salt],
        )
    )
    return keccak(inner)


def _pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


def merkle_levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        level = levels[-1]
        nxt = [_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        levels.append(nxt)
    return levels


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    return merkle_levels(leaves)[-1][0]


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    proof = []
    for level in merkle_levels(leaves)[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index //= 2
    return proof


@dataclass
class Fingerprints:
    copy_id: int
    keys: list[bytes]
    responses: list[bytes]
    salts: list[bytes]
    leaves: list[bytes] = field(default_factory=list)

    @classmethod
    def make(cls, copy_id: int, count: int = 5) -> Fingerprints:
        ks = [f"key {copy_id}/{i}: the violet harbour".encode() for i in range(count)]
        rs = [f"response {i}: quietly".encode() for i in range(count)]
        ss = [keccak(f"salt {copy_id}/{i}".encode()) for i in range(count)]
        fp = cls(copy_id, ks, rs, ss)
        fp.leaves = [leaf(copy_id, i, ks[i], rs[i], ss[i]) for i in range(count)]
        return fp

    @property
    def root(self) -> bytes:
        return merkle_root(self.leaves)

    def reveal(self, index: int, evidence: str = "bafyevidence") -> tuple[Any, ...]:
        return (
            self.copy_id,
            index,
            self.keys[index],
            self.responses[index],
            self.salts[index],
            merkle_proof(self.leaves, index),
            evidence,
        )


def commitment(challenger: str, copy_id: int, index: int, salt: bytes, evidence: str) -> bytes:
    return keccak(
        encode(
            ["address", "uint256", "uint256", "bytes32", "string"],
            [challenger, copy_id, index, salt, evidence],
        )
    )


# ----------------------------------------------------------------- keys and receipts


def private_key(account: Any) -> str:
    return str(account.private_key)


def pubkey(account: Any) -> bytes:
    key = bytes.fromhex(private_key(account).removeprefix("0x"))
    return bytes(keys.PrivateKey(key).public_key.to_bytes())


def signed_receipt(
    host: Any,
    verifying_contract: str,
    copy_id: int,
    epoch: int,
    seq: int,
    prompt: str = "hello",
    response: str = "world",
    chain_id: int = 31337,
) -> tuple[tuple[Any, ...], bytes]:
    receipt = Receipt.for_call(copy_id, epoch, seq, prompt, response)
    signature = sign_receipt(
        Account.from_key(private_key(host)), receipt, chain_id, verifying_contract
    )
    return receipt.as_tuple(), signature


def malleable(signature: bytes) -> bytes:
    """The same signature with s → n - s (and v flipped): valid for ecrecover, high-s."""
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    return r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])


# ----------------------------------------------------------------- the protocol


class World:
    """A deployed protocol plus the moves tests make (faucet, approve, register, ...)."""

    def __init__(self, accounts: Any, chain: Any, fee_token: Any | None = None) -> None:
        self.accounts = accounts
        self.chain = chain
        self.deployer, self.oracle, self.arbiter, self.treasury = accounts[0:4]
        self.infra = accounts[8]
        self.c = deploy_script.deploy_all(
            self.deployer,
            self.oracle,
            self.arbiter,
            self.treasury,
            infrastructure=self.infra,
            profile=PROFILE,
            fee_token=fee_token,
            params_owner=self.deployer,
        )
        self.token = self.c["MockUSD"]
        self.registry = self.c["ModelRegistry"]
        self.ledger = self.c["UsageLedger"]
        self.access = self.c["AccessManager"]
        self.cm = self.c["ChallengeManager"]
        self.gov = self.c["ModelGovernor"]
        self.timelock = self.c["ProtocolTimelock"]

    # -- money
    def fund(self, account: Any, amount: int = 50_000 * USD) -> None:
        if hasattr(self.token, "faucet"):
            self.token.faucet(amount, sender=account)
        else:
            self.token.mint(account, amount, sender=account)
        for spender in (self.access, self.ledger, self.cm):
            self.token.approve(spender, 2**256 - 1, sender=account)

    # -- models
    def register(
        self,
        owner: Any,
        parents: Sequence[int] = (),
        shares: Sequence[int] = (),
        price: int = PRICE,
        min_collateral: int = MIN_COLLATERAL,
        max_stack: int = 10_000,
        publish: bool = True,
    ) -> int:
        tx = self.registry.registerModel(
            list(parents), list(shares), MANIFEST, (price, min_collateral), max_stack, sender=owner
        )
        model_id = int(tx.return_value) if tx.return_value else int(self.registry.nextModelId()) - 1
        if publish:
            self.registry.publishVersion(model_id, WEIGHTS, MANIFEST, sender=owner)
        return model_id

    # -- copies
    def request(self, host: Any, model_id: int, collateral: int = MIN_COLLATERAL) -> int:
        tx = self.access.requestAccess(model_id, 0, ENDPOINT, collateral, pubkey(host), sender=host)
        [event] = tx.events.filter(self.access.AccessRequested)
        return int(event.copyId)

    def deliver(self, copy_id: int, count: int = 5) -> Fingerprints:
        fp = Fingerprints.make(copy_id, count)
        self.access.deliverCopy(copy_id, fp.root, count, COPY_CID, sender=self.oracle)
        return fp

    def licensed_copy(self, host: Any, model_id: int, collateral: int = MIN_COLLATERAL) -> int:
        copy_id = self.request(host, model_id, collateral)
        self.deliver(copy_id)
        return copy_id

    # -- time
    def now(self) -> int:
        return int(self.chain.pending_timestamp)

    def sleep(self, seconds: int) -> None:
        self.chain.pending_timestamp = self.now() + seconds
        self.chain.mine()

    def to_epoch_end(self, epoch: int) -> None:
        """Advance until `epoch` has closed."""
        end = int(self.ledger.epochEnd(epoch))
        if self.now() < end:
            self.chain.pending_timestamp = end
            self.chain.mine()

    def report(self, host: Any, copy_id: int, epoch: int, calls: int, last_seq: int) -> Any:
        self.to_epoch_end(epoch)
        return self.ledger.reportUsage(copy_id, epoch, calls, last_seq, sender=host)

    def first_epoch(self, copy_id: int) -> int:
        return int(self.ledger.firstEpoch(copy_id))

    def prover(self, account: Any) -> Any:
        self.fund(account)
        self.cm.registerProver(sender=account)
        return account

    # -- accounting
    def liabilities(self, model_ids: Sequence[int], accounts: Sequence[Any]) -> dict[str, int]:
        ledger = self.ledger
        lineage = sum(
            int(ledger.lineageAccrued(m)) - int(ledger.lineageSettled(m)) for m in model_ids
        )
        outstanding = sum(int(ledger.modelOutstanding(m)) for m in model_ids)
        claimable = sum(int(ledger.claimable(a)) for a in accounts)
        cfg = ledger.config()
        return {
            "ledger": lineage
            + outstanding
            + claimable
            + int(cfg.protocolUnsplit)
            + int(ledger.proverPool())
            + int(ledger.proverOutstanding())
            + int(ledger.dust()),
            "access": int(self.access.totalCollateral()),
            "challenges": int(self.cm.totalBonds()),
        }

    def balances(self) -> dict[str, int]:
        return {
            "ledger": int(self.token.balanceOf(self.ledger)),
            "access": int(self.token.balanceOf(self.access)),
            "challenges": int(self.token.balanceOf(self.cm)),
        }
