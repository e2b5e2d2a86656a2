"""Receipt verification written from the EIP-712 spec, independent of agents.chain.receipts."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data


def recover(receipt: dict[str, Any]) -> str:
    message = encode_typed_data(
        domain_data={
            "name": "OML Hub",
            "version": "1",
            "chainId": receipt["chainId"],
            "verifyingContract": receipt["verifyingContract"],
        },
        message_types={
            "Receipt": [
                {"name": "copyId", "type": "uint256"},
                {"name": "epoch", "type": "uint64"},
                {"name": "seq", "type": "uint64"},
                {"name": "promptHash", "type": "bytes32"},
                {"name": "responseHash", "type": "bytes32"},
            ]
        },
        message_data={
            "copyId": receipt["copyId"],
            "epoch": receipt["epoch"],
            "seq": receipt["seq"],
            "promptHash": bytes.fromhex(receipt["promptHash"][2:]),
            "responseHash": bytes.fromhex(receipt["responseHash"][2:]),
        },
    )
    return str(Account.recover_message(message, signature=receipt["signature"]))
