"""EventCursor against a real Anvil: exactly-once handlers, crash safety, reorg re-scan."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import solcx
from web3 import Web3
from web3.contract import Contract

from agents.chain.events import ChainEvent, EventCursor
from agents.chain.keystore import dev_account
from agents.chain.transactions import TransactionSender
from tests.support.anvil import REPO_ROOT, private_anvil

EMITTER_SOURCE = """
// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
contract Emitter {
    event Ping(uint256 indexed id, string note);
    function ping(uint256 id, string calldata note) external { emit Ping(id, note); }
}
"""


@pytest.fixture(scope="module")
def emitter_artifact() -> dict[str, Any]:
    solcx.set_solc_version("0.8.30", silent=True)
    compiled = solcx.compile_source(
        EMITTER_SOURCE, output_values=["abi", "bin"], solc_binary=str(REPO_ROOT / "tools/solc/solc")
    )
    return dict(next(iter(compiled.values())))


@pytest.fixture
def chain() -> Iterator[Web3]:
    with private_anvil() as w3:
        yield w3


@pytest.fixture
def emitter(chain: Web3, emitter_artifact: dict[str, Any]) -> Contract:
    sender = TransactionSender(chain, dev_account(0))
    factory = chain.eth.contract(abi=emitter_artifact["abi"], bytecode=emitter_artifact["bin"])
    tx = factory.constructor().build_transaction(
        {"from": sender.address, "nonce": chain.eth.get_transaction_count(sender.address)}
    )
    signed = dev_account(0).sign_transaction(tx)
    receipt = chain.eth.wait_for_transaction_receipt(
        chain.eth.send_raw_transaction(signed.raw_transaction)
    )
    return chain.eth.contract(address=receipt["contractAddress"], abi=emitter_artifact["abi"])


class Recorder:
    """A handler that writes its own state in the cursor's transaction."""

    def __init__(self) -> None:
        self.fail_next = False

    def __call__(self, event: ChainEvent, conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS pings (id INTEGER, tx TEXT)")
        conn.execute("INSERT INTO pings VALUES (?, ?)", (event.args["id"], event.tx_hash))
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("handler crashed mid-way")


def _cursor(chain: Web3, emitter: Contract, db: Path, **kwargs: Any) -> EventCursor:
    cursor = EventCursor(chain, db, name="test", contracts=[emitter], **kwargs)
    return cursor


def _pings(cursor: EventCursor) -> list[int]:
    try:
        return [row[0] for row in cursor.db.execute("SELECT id FROM pings ORDER BY rowid")]
    except sqlite3.OperationalError:
        return []


def _ping(chain: Web3, emitter: Contract, ping_id: int) -> bytes:
    """Sign and send ping(id); returns the raw signed transaction for re-broadcast."""
    account = dev_account(1)
    tx = emitter.functions.ping(ping_id, f"ping {ping_id}").build_transaction(
        {"from": account.address, "nonce": chain.eth.get_transaction_count(account.address)}
    )
    raw = bytes(account.sign_transaction(tx).raw_transaction)
    chain.eth.wait_for_transaction_receipt(chain.eth.send_raw_transaction(raw))
    return raw


def test_each_event_is_handled_once_across_restarts(
    chain: Web3, emitter: Contract, tmp_path: Path
) -> None:
    recorder = Recorder()
    cursor = _cursor(chain, emitter, tmp_path / "c.db", max_range=2)
    cursor.on("Ping", recorder)
    for ping_id in range(5):
        _ping(chain, emitter, ping_id)
    assert cursor.poll_once() == 5
    assert cursor.poll_once() == 0
    # A new process over the same database resumes from the checkpoint.
    restarted = _cursor(chain, emitter, tmp_path / "c.db", max_range=2)
    restarted.on("Ping", recorder)
    _ping(chain, emitter, 5)
    assert restarted.poll_once() == 1
    assert _pings(restarted) == [0, 1, 2, 3, 4, 5]


def test_a_crashing_handler_leaves_no_partial_state(
    chain: Web3, emitter: Contract, tmp_path: Path
) -> None:
    recorder = Recorder()
    cursor = _cursor(chain, emitter, tmp_path / "c.db")
    cursor.on("Ping", recorder)
    _ping(chain, emitter, 1)
    _ping(chain, emitter, 2)
    recorder.fail_next = True
    with pytest.raises(RuntimeError, match="handler crashed"):
        cursor.poll_once()
    assert _pings(cursor) == []  # the failed handler's write was rolled back
    assert cursor.poll_once() == 2
    assert _pings(cursor) == [1, 2]


def test_confirmations_hold_back_recent_events(
    chain: Web3, emitter: Contract, tmp_path: Path
) -> None:
    cursor = _cursor(chain, emitter, tmp_path / "c.db", confirmations=2)
    cursor.on("Ping", Recorder())
    _ping(chain, emitter, 1)
    assert cursor.poll_once() == 0
    chain.provider.make_request("anvil_mine", [2])  # type: ignore[arg-type]
    assert cursor.poll_once() == 1


def test_reorg_rescans_and_a_reincluded_event_is_handled_once(
    chain: Web3, emitter: Contract, tmp_path: Path
) -> None:
    cursor = _cursor(chain, emitter, tmp_path / "c.db")
    cursor.on("Ping", Recorder())
    _ping(chain, emitter, 1)
    assert cursor.poll_once() == 1

    snapshot = chain.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    raw = _ping(chain, emitter, 2)
    _ping(chain, emitter, 3)
    assert cursor.poll_once() == 2
    old_position = cursor.position()

    # Reorg: the blocks holding pings 2 and 3 vanish; ping 2 reappears in a later block,
    # ping 3 never comes back, and a new ping 4 arrives.
    chain.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    chain.provider.make_request("anvil_mine", [3])  # type: ignore[arg-type]
    chain.eth.wait_for_transaction_receipt(chain.eth.send_raw_transaction(raw))
    _ping(chain, emitter, 4)

    assert cursor.poll_once() == 1  # only ping 4 is new; ping 2 keeps its key
    assert _pings(cursor) == [1, 2, 3, 4]
    position = cursor.position()
    assert position is not None and old_position is not None
    assert position[1] == Web3.to_hex(chain.eth.get_block(position[0])["hash"])
