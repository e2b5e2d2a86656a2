"""Connect the creator's account to a deployment, with errors that say what to fix."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from agents.chain.deployments import Deployment
from agents.chain.errors import ChainError
from agents.chain.keystore import resolve_account
from agents.chain.protocol import Protocol
from agents.config import get_settings
from agents.creator.errors import ConnectionProblem
from agents.creator.settings import CreatorSettings


def connect(
    settings: CreatorSettings, rpc_url: str | None = None, *, read_only: bool = False
) -> Protocol:
    """The creator's account on ``settings.network``; ``read_only`` works without a key."""
    url = rpc_url or get_settings().rpc_url
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
    if not w3.is_connected():
        raise ConnectionProblem(f"no chain at {url}: start it (`oml world up`) or set OML_RPC_URL")
    chain_id = int(w3.eth.chain_id)
    try:
        spec = settings.account_spec()
    except ValueError as error:
        if not read_only or settings.keystore is not None:
            raise ConnectionProblem(str(error)) from error
        spec = ""
    try:
        deployment = Deployment.load(settings.network)
        account: LocalAccount = (
            resolve_account(spec, chain_id=chain_id, password_env=settings.password_env)
            if spec
            else Account.create()  # never signs: views only
        )
    except ChainError as error:
        raise ConnectionProblem(str(error)) from error
    if deployment.chain_id != chain_id:
        raise ConnectionProblem(
            f"deployments/{settings.network}.json is for chain {deployment.chain_id} but {url} "
            f"is chain {chain_id}: pick the matching --network or OML_RPC_URL"
        )
    return Protocol(w3, deployment, account)


def call_struct(contract: Contract, function: str, *args: Any) -> dict[str, Any]:
    """Call a view returning one struct; give its fields by name (from the ABI)."""
    value = getattr(contract.functions, function)(*args).call()
    for item in contract.abi:
        if item.get("type") == "function" and item.get("name") == function:
            components = item["outputs"][0]["components"]  # type: ignore[typeddict-item]
            return {c["name"]: v for c, v in zip(components, value, strict=True)}
    raise ConnectionProblem(f"{function} is not in the ABI of {contract.address}: `make compile`")
