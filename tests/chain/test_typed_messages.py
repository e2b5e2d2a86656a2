"""EIP-712 receipts and key requests: signatures recover to the signer and bind every field."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.chain.key_requests import KeyRequest, key_request_signer, sign_key_request
from agents.chain.keystore import dev_account, public_key_bytes
from agents.chain.receipts import Receipt, recover_signer, sign_receipt

CONTRACT = "0x" + "ab" * 20
HOST = dev_account(4)


@settings(max_examples=25, deadline=None)
@given(
    copy_id=st.integers(0, 2**256 - 1),
    epoch=st.integers(0, 2**64 - 1),
    seq=st.integers(0, 2**64 - 1),
    prompt=st.text(max_size=50),
)
def test_receipt_signature_recovers_host(copy_id: int, epoch: int, seq: int, prompt: str) -> None:
    receipt = Receipt.for_call(copy_id, epoch, seq, prompt, "response")
    signature = sign_receipt(HOST, receipt, 31337, CONTRACT)
    assert recover_signer(receipt, signature, 31337, CONTRACT) == HOST.address


def test_receipt_signature_is_bound_to_chain_contract_and_fields() -> None:
    receipt = Receipt.for_call(7, 1, 5, "prompt", "response")
    signature = sign_receipt(HOST, receipt, 31337, CONTRACT)
    other_seq = receipt.model_copy(update={"seq": 6})
    assert recover_signer(other_seq, signature, 31337, CONTRACT) != HOST.address
    assert recover_signer(receipt, signature, 1, CONTRACT) != HOST.address
    assert recover_signer(receipt, signature, 31337, "0x" + "cd" * 20) != HOST.address


def test_receipt_rejects_out_of_range_fields() -> None:
    with pytest.raises(ValueError):
        Receipt(copy_id=1, epoch=2**64, seq=0, prompt_hash=b"\0" * 32, response_hash=b"\0" * 32)
    with pytest.raises(ValueError):
        Receipt(copy_id=1, epoch=0, seq=0, prompt_hash=b"\0" * 31, response_hash=b"\0" * 32)


def test_key_request_signature() -> None:
    prover = dev_account(5)
    request = KeyRequest(prover=prover.address, copy_id=3, count=4, nonce=9, deadline=10**10)
    signature = sign_key_request(prover, request, 31337)
    assert key_request_signer(request, signature, 31337) == prover.address
    forged = request.model_copy(update={"count": 64})
    assert key_request_signer(forged, signature, 31337) != prover.address


def test_public_key_matches_address() -> None:
    from eth_utils.crypto import keccak

    pubkey = public_key_bytes(HOST)
    assert len(pubkey) == 64
    assert "0x" + keccak(pubkey)[-20:].hex() == HOST.address.lower()
