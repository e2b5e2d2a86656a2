"""A whole small world for the prover: contracts on Anvil, the oracle delivering two tiny
fingerprinted copies through IPFS, its key service over HTTP, real host servers (receipts,
ledger, reporter) and a rogue server — all real, at toy sizes.

Time is the chain's: host ledgers and reporters read the latest block's timestamp, and tests
move it with ``evm_increaseTime``. (A uniquely named module: ``conftest`` is ambiguous.)
"""

from __future__ import annotations

import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from eth_account.signers.local import LocalAccount
from web3 import Web3

from agents.chain.keystore import dev_account, public_key_bytes
from agents.chain.protocol import Protocol
from agents.fingerprint.embedding import EmbedConfig
from agents.fingerprint.models import make_tiny_model
from agents.host.api import ServingConfig, create_app
from agents.host.chain import HostChain
from agents.host.epochs import EpochClock
from agents.host.inference import InferenceEngine
from agents.host.ledger import ReceiptLedger, ReceiptSigner
from agents.host.metering import Metering
from agents.host.reporter import UsageReporter
from agents.oracle.keyservice import KeyServiceLimits
from agents.oracle.keyservice import create_app as key_service_app
from agents.oracle.runner import Oracle, build_oracle
from agents.oracle.secrets import MasterSecret
from agents.oracle.settings import OracleSettings
from agents.prover.service import Prover
from agents.prover.settings import ProverSettings
from agents.storage.client import IpfsClient
from agents.storage.models import fetch_folder, publish_folder

REPO_ROOT = Path(__file__).resolve().parents[2]
# The tiny model is random: a large step, every layer trains, little benign data (the utility
# of a random model is not what these tests are about).
TINY = EmbedConfig(
    train_layers=None,
    learning_rate=1e-2,
    progress=False,
    max_epochs=60,
    augment_fraction=1.0,
    benign_sequences=8,
)
FINGERPRINTS = 32
PRICE = 1_000  # 0.001 mUSD per call
COLLATERAL = 10_000_000  # 10 mUSD
USD = 10**6
CREATOR, HOST_A, HOST_B, PROVER, RIVAL = 5, 6, 7, 4, 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- chain time


def chain_now(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


def warp(w3: Web3, seconds: int) -> None:
    w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def mine(w3: Web3, blocks: int = 1) -> None:
    for _ in range(blocks):
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def warp_to_next_epoch(w3: Web3, genesis: int, length: int) -> int:
    """Move to 1 s into the next epoch; returns the epoch that just closed."""
    now = chain_now(w3)
    epoch = (now - genesis) // length
    warp(w3, genesis + (epoch + 1) * length + 1 - now)
    return epoch


# --------------------------------------------------------------------------- servers


@dataclass
class Server:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def serve(app: Any, port: int) -> Server:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"server on port {port} did not start")
        time.sleep(0.02)
    return Server(f"http://127.0.0.1:{port}", server, thread)


@dataclass
class Host:
    """A real host node for one copy: server with receipts, ledger and usage reporter."""

    name: str
    account: LocalAccount
    copy_id: int
    port: int
    model: tuple[Any, Any]
    world: World
    ledger: ReceiptLedger | None = None
    server: Server | None = None
    reporter: UsageReporter | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def chain(self) -> HostChain:
        return HostChain(self.world.protocol(self.account))

    def start(self, ledger_path: Path) -> Host:
        w = self.world
        signer = ReceiptSigner(self.account, w.chain_id, w.challenge_manager)
        clock = EpochClock(w.genesis, w.epoch_length, now=lambda: float(chain_now(w.w3)))
        self.ledger = ReceiptLedger(
            ledger_path, copy_id=self.copy_id, signer=signer, clock=clock, durable=False
        )
        engine = InferenceEngine(*self.model, max_batch_size=4)
        config = ServingConfig(
            model_name=f"oml-copy-{self.copy_id}",
            copy_id=self.copy_id,
            signer=self.account.address,
            chain_id=w.chain_id,
            verifying_contract=w.challenge_manager,
            max_tokens_limit=64,
            max_prompt_tokens=512,
            max_body_bytes=64_000,
        )
        self.server = serve(create_app(engine, Metering(self.ledger), config), self.port)
        self.reporter = UsageReporter(self.ledger, self.chain(), clock, grace_s=0)
        return self

    def report(self) -> list[int]:
        """Report (honestly) every closed epoch; returns the epochs reported."""
        assert self.reporter is not None
        result = self.reporter.run_once()
        assert result.error is None, result.error
        return result.reported + result.adopted

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()  # the app's shutdown closes the ledger
            self.server = None


@dataclass
class World:
    network: str
    rpc: str
    w3: Web3
    chain_id: int
    challenge_manager: str
    genesis: int
    epoch_length: int
    params: dict[str, Any]
    model_id: int
    copies: dict[str, int]
    copy_dirs: dict[str, Path]
    ports: dict[str, int]
    oracle: Oracle
    key_service: Server
    models: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def protocol(self, account: LocalAccount) -> Protocol:
        return Protocol.connect(account, self.network, rpc_url=self.rpc)

    def host(self, name: str) -> Host:
        index = HOST_A if name == "a" else HOST_B
        return Host(
            name, dev_account(index), self.copies[name], self.ports[name], self.models[name], self
        )

    def reset_key_service(self) -> None:
        """The chain is reverted after every test; so is the oracle's record of releases."""
        db = self.oracle.service.jobs.db
        for table in ("key_release", "key_request_nonce"):
            db.execute(f"DELETE FROM {table}")

    def prover(
        self, state_dir: Path, account: int = PROVER, *, register: bool = True, **overrides: Any
    ) -> Prover:
        settings = ProverSettings(
            network=self.network,
            account=f"dev:{account}",
            state_dir=state_dir,
            key_service_url=self.key_service.url,
            reveal_confirmations=1,
            **overrides,
        )
        prover = Prover.build(settings, rpc_url=self.rpc)
        if register:
            protocol = self.protocol(dev_account(account))
            protocol.faucet(1_000 * USD)
            prover.chain.register()
        return prover

    def rogue(self, name: str) -> Server:
        """An unregistered endpoint serving host ``name``'s copy (no receipts: not metered)."""
        engine = InferenceEngine(*self.models[name], max_batch_size=4)
        config = ServingConfig(
            model_name="totally-original-llm",
            copy_id=0,
            signer="0x" + "00" * 20,
            chain_id=self.chain_id,
            verifying_contract=self.challenge_manager,
            max_tokens_limit=64,
            max_prompt_tokens=512,
        )
        return serve(create_app(engine, None, config), free_port())

    def token_balance(self, address: str) -> int:
        return self.protocol(dev_account(0)).token_balance(address)

    def collateral(self, name: str) -> int:
        return self.protocol(dev_account(0)).copy(self.copies[name]).collateral

    def copy_state(self, name: str) -> int:
        return self.protocol(dev_account(0)).copy(self.copies[name]).state


def build_world(accounts: Any, chain: Any, root: Path, setenv: Callable[[str, str], None]) -> World:
    """Deploy, register a model, license two copies, let the oracle deliver them."""
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from deploy import DEV, deploy_all, write_deployment

    from agents.config import get_settings

    rpc = chain.provider.uri
    setenv("OML_RPC_URL", rpc)
    get_settings.cache_clear()
    network = f"test-prover-{uuid.uuid4().hex[:8]}"
    contracts = deploy_all(accounts[0], accounts[1], accounts[2], accounts[3], profile=DEV)
    roles = {
        "oracle": accounts[1].address,
        "arbiter": accounts[2].address,
        "treasury": accounts[3].address,
    }
    write_deployment(network, chain.chain_id, 1, contracts, roles, DEV)
    w3 = Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": 60}))

    base = make_tiny_model(root / "base", seed=3)
    creator = Protocol.connect(dev_account(CREATOR), network, rpc_url=rpc)
    with IpfsClient() as store:
        published = publish_folder(store, base, encrypt_to=public_key_bytes(dev_account(1)))
    model_id = creator.register_model(
        published.manifest_cid, price_per_call=PRICE, min_collateral=COLLATERAL
    )
    creator.publish_version(model_id, published.manifest_cid, published.manifest_cid)

    ports = {"a": free_port(), "b": free_port()}
    copies = {}
    for name, index in (("a", HOST_A), ("b", HOST_B)):
        host = Protocol.connect(dev_account(index), network, rpc_url=rpc)
        host.faucet(1_000 * USD)
        copies[name] = host.request_access(
            model_id, 0, f"http://127.0.0.1:{ports[name]}", COLLATERAL
        )

    secret = root / "master.secret"
    MasterSecret.create(secret)
    settings = OracleSettings(
        network=network,
        account="dev:1",
        state_dir=root / "oracle",
        master_secret=secret,
        fingerprint_count=FINGERPRINTS,
        recall_threshold=0.9,
    )
    oracle = build_oracle(settings, TINY)
    delivered = oracle.step()
    assert delivered == 2, [oracle.service.jobs.get(c) for c in copies.values()]
    keys = serve(
        key_service_app(oracle.service, KeyServiceLimits(keys_per_copy_per_window=64)), free_port()
    )

    from transformers import AutoModelForCausalLM, AutoTokenizer

    copy_dirs, models = {}, {}
    for name, index in (("a", HOST_A), ("b", HOST_B)):
        cid = creator.delivered_cid(copies[name])
        assert cid is not None
        with IpfsClient() as store:
            fetch_folder(
                store, cid, root / f"copy-{name}", private_key=bytes(dev_account(index).key)
            )
        copy_dirs[name] = root / f"copy-{name}"
        tokenizer = AutoTokenizer.from_pretrained(copy_dirs[name])
        model = AutoModelForCausalLM.from_pretrained(copy_dirs[name]).eval()
        models[name] = (model, tokenizer)

    manager = creator.contract("ChallengeManager")
    ledger = creator.contract("UsageLedger")
    return World(
        network=network,
        rpc=rpc,
        w3=w3,
        chain_id=int(chain.chain_id),
        challenge_manager=str(manager.address),
        genesis=int(ledger.functions.genesis().call()),
        epoch_length=int(ledger.functions.epochLength().call()),
        params=DEV._asdict(),
        model_id=model_id,
        copies=copies,
        copy_dirs=copy_dirs,
        ports=ports,
        oracle=oracle,
        key_service=keys,
        models=models,
    )
