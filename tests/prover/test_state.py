"""The prover's state DB: keys encrypted at rest, key statuses only move forward, restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.chain.keystore import dev_account, public_key_bytes
from agents.prover.errors import ConfigError
from agents.prover.state import KeyMaterial, ProverState
from agents.storage.errors import DecryptionError

ACCOUNT = dev_account(4)


def _open(path: Path, account: object = ACCOUNT) -> ProverState:
    return ProverState.open(
        path,
        public_key=public_key_bytes(account),  # type: ignore[arg-type]
        private_key=bytes(account.key),
        chain_id=31337,
    )  # type: ignore[attr-defined]


def _key(index: int) -> KeyMaterial:
    return KeyMaterial(
        9,
        index,
        f"secret key words {index}",
        f"answer {index}",
        bytes([index]) * 32,
        [b"\x01" * 32, b"\x02" * 32],
    )


def test_keys_are_encrypted_at_rest_and_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "prover.sqlite3"
    state = _open(path)
    assert state.store_keys([_key(0), _key(1)]) == 2
    assert state.store_keys([_key(1)]) == 0  # never two rows for one index
    state.db.close()
    raw = path.read_bytes() + (
        path.with_suffix(".sqlite3-wal").read_bytes()
        if path.with_suffix(".sqlite3-wal").exists()
        else b""
    )
    assert b"secret key words" not in raw and b"answer 1" not in raw
    again = _open(path)
    assert again.keys(9) == [_key(0), _key(1)]
    stranger = _open(path, dev_account(7))
    with pytest.raises(DecryptionError):
        stranger.keys(9)


def test_a_burned_key_never_becomes_usable_again(tmp_path: Path) -> None:
    state = _open(tmp_path / "s.sqlite3")
    state.store_keys([_key(i) for i in range(4)])
    state.advance_keys(9, [0], "revealed")
    state.advance_keys(9, [1], "published")
    state.advance_keys(9, [0, 1], "exposed")  # backwards: ignored
    assert state.key_status(9, 0) == "revealed" and state.key_status(9, 1) == "published"
    assert [k.index for k in state.keys(9)] == [2, 3]
    assert [k.index for k in state.keys(9, ("fresh", "exposed"))] == [2, 3]


def test_state_refuses_another_identity(tmp_path: Path) -> None:
    state = _open(tmp_path / "s.sqlite3")
    state.bind_identity(ACCOUNT.address, "0xabc")
    state.bind_identity(ACCOUNT.address, "0xabc")
    with pytest.raises(ConfigError, match="belongs to"):
        state.bind_identity(dev_account(5).address, "0xabc")


def test_provable_offences_are_tracked_once(tmp_path: Path) -> None:
    state = _open(tmp_path / "s.sqlite3")
    assert state.new_challenge("under-report", 1, "submitting", epoch=3) is not None
    assert state.new_challenge("under-report", 1, "submitting", epoch=3) is None
    assert state.new_challenge("under-report", 1, "submitting", epoch=4) is not None
    assert state.new_challenge("equivocation", 1, "submitting", seq=3) is not None
    assert state.new_challenge("equivocation", 1, "submitting", seq=3) is None
    first = state.new_challenge("leak", 1, "committing", key_index=1, data={"endpoint": "x"})
    assert first is not None and state.new_challenge("leak", 1, "committing") is not None
    row = state.challenge(first)
    assert row is not None and row.data == {"endpoint": "x"}
    state.update_challenge(first, state="committed", onchain_id=5, data={"a": 1})
    row = state.challenge(first)
    assert row is not None and (row.state, row.onchain_id, row.data) == ("committed", 5, {"a": 1})
