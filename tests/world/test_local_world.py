"""The local world that `make up` / `make test` start: a real IPFS node and a real Anvil."""

from __future__ import annotations

import socket
from pathlib import Path

import ipfshttpclient
import pytest

from agents.config import Settings, get_settings
from agents.world import WorldError, chain_answers, up

HELLO_CID = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"  # Kubo's CID of b"hello world\n"


def test_ipfs_add_cat_round_trip() -> None:
    settings = get_settings()
    client = ipfshttpclient.Client(settings.ipfs_api_multiaddr, timeout=10)
    try:
        cid = client.add_bytes(b"hello world\n")
        assert cid == HELLO_CID
        assert client.cat(cid, timeout=10) == b"hello world\n"
    finally:
        client.close()


def test_chain_answers_with_fixed_chain_id() -> None:
    settings = get_settings()
    assert chain_answers(settings.rpc_url) == 31337


def test_up_names_the_taken_port_and_its_setting(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        settings = Settings(run_dir=tmp_path, anvil_port=taken)
        with pytest.raises(WorldError, match=rf"port {taken}.*OML_ANVIL_PORT"):
            up(settings, timeout_s=5)
