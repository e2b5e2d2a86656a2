"""Licences from the host's side: stake and request a copy, wait for it, fetch and decrypt it.

``requestAccess(modelId, version, endpoint, collateral, hostPubKey)`` pulls the collateral
(approve ``AccessManager`` first) and emits ``AccessRequested``; the oracle answers with
``deliverCopy``, whose ``CopyDelivered`` event carries the manifest CID of the copy sealed to
``hostPubKey``. Only this host's private key can open it (:func:`agents.storage.fetch_folder`).
Exit is ``requestExit`` then, after ``exitDelay`` and with no open challenge, ``withdraw``.

The checks before each transaction repeat the contract's, to say what to do instead of
naming a revert; the contract still decides (a race shows as the decoded custom error).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from web3.logs import DISCARD

from agents.chain.keystore import public_key_bytes
from agents.chain.protocol import Protocol
from agents.host.chain import CopyState, HostChain, call_struct
from agents.host.errors import HostError
from agents.storage.client import IpfsClient
from agents.storage.models import fetch_folder

log = logging.getLogger(__name__)


class AccessError(HostError):
    """A licence cannot be requested, delivered or fetched as asked."""


@dataclass(frozen=True)
class AccessRequest:
    copy_id: int
    model_id: int
    version: int
    collateral: int
    endpoint: str
    tx_hash: str


@dataclass(frozen=True)
class Delivery:
    copy_id: int
    copy_cid: str
    fp_count: int
    fp_root: str
    block: int


@dataclass(frozen=True)
class FetchedCopy:
    copy_id: int
    copy_cid: str
    path: str
    files: int
    size: int


@dataclass(frozen=True)
class ExitStatus:
    copy_id: int
    state: str
    withdrawable_at: int
    amount: int
    tx_hash: str


class HostAccess:
    """One host account's licences on one deployment."""

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        self.chain = HostChain(protocol)
        self.registry = protocol.contract("ModelRegistry")
        self.access = self.chain.access

    @property
    def address(self) -> str:
        return self.chain.address

    # ----------------------------------------------------------------- request

    def request_access(
        self, model_id: int, version: int, endpoint: str, collateral: int
    ) -> AccessRequest:
        """Approve the collateral, stake it and request a copy; returns the new copy id."""
        self._check_request(model_id, version, endpoint, collateral)
        token = self.chain.token
        if token.functions.allowance(self.address, self.access.address).call() < collateral:
            self.chain.sender.send(
                token.functions.approve(self.access.address, collateral),
                label="approve collateral for AccessManager",
            )
        receipt = self.chain.sender.send(
            self.access.functions.requestAccess(
                model_id, version, endpoint, collateral, public_key_bytes(self.protocol.account)
            ),
            label=f"requestAccess model {model_id} v{version}",
        )
        [event] = self.access.events.AccessRequested().process_receipt(receipt, errors=DISCARD)
        copy_id = int(event["args"]["copyId"])
        log.info("requested copy %d of model %d v%d", copy_id, model_id, version)
        return AccessRequest(
            copy_id=copy_id,
            model_id=model_id,
            version=version,
            collateral=collateral,
            endpoint=endpoint,
            tx_hash=receipt["transactionHash"].to_0x_hex(),
        )

    def _check_request(self, model_id: int, version: int, endpoint: str, collateral: int) -> None:
        network = self.protocol.deployment.network
        if not self.registry.functions.exists(model_id).call():
            raise AccessError(f"model {model_id} does not exist on {network}")
        count = int(self.registry.functions.versionCount(model_id).call())
        if version >= count:
            have = f"versions 0..{count - 1}" if count else "no version yet"
            raise AccessError(f"model {model_id} has {have}; pick one of those with --version")
        if not self.registry.functions.isVersionAccepted(model_id, version).call():
            raise AccessError(
                f"version {version} of model {model_id} is not accepted for licensing yet: "
                "its share holders must accept it first"
            )
        info = call_struct(self.registry, "modelInfo", model_id)
        if not info["licensingOpen"]:
            raise AccessError(f"licensing of model {model_id} is paused by its governance")
        if urlsplit(endpoint).scheme not in ("http", "https") or not urlsplit(endpoint).netloc:
            raise AccessError(
                f"endpoint {endpoint!r} is not an http(s) URL: pass the public URL of your "
                "server, e.g. https://host.example/v1"
            )
        if not self.chain.fee_token_allowed():
            raise AccessError(
                f"the fee token {self.chain.token.address} is not allow-listed on {network}: "
                "new licences are stopped until the protocol lists it again"
            )
        minimum = int(info["minCollateral"])
        if collateral <= 0 or collateral < minimum:
            raise AccessError(
                f"collateral {collateral} is below model {model_id}'s minimum {minimum}: "
                f"pass --collateral {max(minimum, 1)} or more"
            )
        balance = self.chain.token_balance()
        if balance < collateral:
            raise AccessError(
                f"the host account {self.address} holds {balance} fee-token units but the "
                f"collateral is {collateral}: fund it first (local chain: MockUSD faucet)"
            )

    # ----------------------------------------------------------------- delivery

    def delivery(self, copy_id: int) -> Delivery | None:
        """The copy's ``CopyDelivered`` event, or None while it is not delivered."""
        logs = self.access.events.CopyDelivered().get_logs(
            from_block=self.protocol.deployment.deploy_block, argument_filters={"copyId": copy_id}
        )
        if not logs:
            return None
        event = logs[-1]
        return Delivery(
            copy_id=copy_id,
            copy_cid=str(event["args"]["copyCID"]),
            fp_count=int(event["args"]["fpCount"]),
            fp_root="0x" + bytes(event["args"]["fpRoot"]).hex(),
            block=int(event["blockNumber"]),
        )

    def wait_for_delivery(
        self,
        copy_id: int,
        *,
        timeout_s: float,
        poll_s: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Delivery:
        """Poll until the oracle delivers ``copy_id``; AccessError after ``timeout_s``."""
        deadline = monotonic() + timeout_s
        while True:
            found = self.delivery(copy_id)
            if found is not None:
                return found
            state = CopyState(self.chain.copy_info(copy_id)["state"])
            if state == CopyState.WITHDRAWN:
                raise AccessError(f"copy {copy_id} was cancelled before delivery")
            if monotonic() >= deadline:
                raise AccessError(
                    f"copy {copy_id} was not delivered within {timeout_s:.0f} s; it stays "
                    f"requested: run `oml host fetch-copy {copy_id}` once the oracle delivers"
                )
            sleep(poll_s)

    def fetch_copy(
        self, copy_id: int, out: Path, *, store: IpfsClient | None = None, progress: bool = False
    ) -> FetchedCopy:
        """Download the delivered copy and decrypt it with this host's key into ``out``."""
        self.chain.check_copy(copy_id)
        found = self.delivery(copy_id)
        if found is None:
            state = CopyState(self.chain.copy_info(copy_id)["state"]).name.lower()
            raise AccessError(
                f"copy {copy_id} is not delivered yet (state {state}): wait for the oracle "
                "(`oml host request-access ... --wait`) and try again"
            )
        client = store or IpfsClient()
        try:
            manifest = fetch_folder(
                client,
                found.copy_cid,
                out,
                private_key=bytes(self.protocol.account.key),
                progress=progress,
            )
        finally:
            if store is None:
                client.close()
        log.info("fetched copy %d (%s) into %s", copy_id, found.copy_cid, out)
        return FetchedCopy(
            copy_id=copy_id,
            copy_cid=found.copy_cid,
            path=str(out),
            files=len(manifest.files),
            size=manifest.total_size,
        )

    # ----------------------------------------------------------------- exit

    def request_exit(self, copy_id: int) -> ExitStatus:
        """Stop licensing ``copy_id``; its collateral stays slashable for ``exitDelay``."""
        self.chain.check_copy(copy_id)
        state = CopyState(self.chain.copy_info(copy_id)["state"])
        if state != CopyState.ACTIVE:
            raise AccessError(
                f"copy {copy_id} is {state.name.lower()}: only an active copy can exit "
                "(an undelivered request is cancelled after the delivery timeout instead)"
            )
        receipt = self.chain.sender.send(
            self.access.functions.requestExit(copy_id), label=f"requestExit copy {copy_id}"
        )
        [event] = self.access.events.ExitRequested().process_receipt(receipt, errors=DISCARD)
        return ExitStatus(
            copy_id=copy_id,
            state="exiting",
            withdrawable_at=int(event["args"]["withdrawableAt"]),
            amount=0,
            tx_hash=receipt["transactionHash"].to_0x_hex(),
        )

    def withdraw(self, copy_id: int) -> ExitStatus:
        """Take the remaining collateral back once the exit delay is over."""
        self.chain.check_copy(copy_id)
        info = self.chain.copy_info(copy_id)
        state = CopyState(info["state"])
        if state != CopyState.EXITING:
            raise AccessError(
                f"copy {copy_id} is {state.name.lower()}: request the exit first "
                f"(`oml host request-exit {copy_id}`)"
            )
        ready_at = int(info["exitRequestedAt"]) + int(self.access.functions.exitDelay().call())
        now = int(self.protocol.w3.eth.get_block("latest")["timestamp"])
        if now < ready_at:
            raise AccessError(
                f"copy {copy_id} can be withdrawn from {ready_at} (unix time, in "
                f"{ready_at - now} s): its collateral stays slashable until then"
            )
        if int(info["openChallenges"]):
            raise AccessError(
                f"copy {copy_id} has {info['openChallenges']} open challenge(s): withdraw "
                "after they are resolved (`oml host status`)"
            )
        receipt = self.chain.sender.send(
            self.access.functions.withdraw(copy_id), label=f"withdraw copy {copy_id}"
        )
        [event] = self.access.events.Withdrawn().process_receipt(receipt, errors=DISCARD)
        return ExitStatus(
            copy_id=copy_id,
            state="withdrawn",
            withdrawable_at=ready_at,
            amount=int(event["args"]["amount"]),
            tx_hash=receipt["transactionHash"].to_0x_hex(),
        )
