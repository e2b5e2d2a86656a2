"""A whole small world for the prover: contracts on Anvil, the oracle delivering two tiny
fingerprinted copies through IPFS, its key service over HTTP, real host servers (receipts,
ledger, reporter) and a rogue server — all real, at toy sizes.

Time is the chain's: host ledgers and reporters read the latest block's timestamp, and tests
move it with ``evm_increaseTime``. (A uniquely named module: ``conftest`` is ambiguous.)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
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
from agents.fingerprint.models import make_tiny_model, tiny_embed_config
from agents.host.api import ServingConfig, create_app
from agents.host.chain import HostChain
from agents.host.epochs import EpochClock
from agents.host.inference import InferenceEngine
from agents.host.ledger import ReceiptLedger, ReceiptSigner
from agents.host.metering import Metering
from agents.host.reporter import UsageReporter
from agents.oracle.keyservice import KeyServiceLimits
from agents.oracle.keyservice import create_app as key_service_app
from agents.oracle.ports import FingerprintedCopy
from agents.oracle.runner import Oracle, build_oracle
from agents.oracle.secrets import MasterSecret
from agents.oracle.settings import OracleSettings
from agents.prover.service import Prover
from agents.prover.settings import ProverSettings
from agents.storage.client import IpfsClient
from agents.storage.models import fetch_folder, publish_folder

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE = REPO_ROOT / ".cache" / "prover-test"
# The tiny model is random: a large step, every layer trains, little benign data (the utility
# of a random model is not what these tests are about).
TINY = tiny_embed_config()
FINGERPRINTS = 32
PRICE = 1_000  # 0.001 mUSD per call
COLLATERAL = 10_000_000  # 10 mUSD
USD = 10**6
CREATOR, HOST_A, HOST_B, PROVER, RIVAL = 5, 6, 7, 4, 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CachedEngine:
    """The oracle's real fingerprint engine with its embeddings kept on disk between runs.

    Keyed by the base weights, the copy's seed, the count and the embed config: a hit is the
    very model and fingerprints the engine produced for those inputs before. Everything else
    the oracle does (recall check, encryption, upload, delivery, key service) runs for real.
    """

    def __init__(self, engine: Any, cache: Path) -> None:
        self.engine = engine
        self.cache = cache

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def embed(self, base_dir: Path, out_dir: Path, seed: bytes, count: int) -> FingerprintedCopy:
        digest = hashlib.sha256(seed + str(count).encode() + TINY.model_dump_json().encode())
        for weights in sorted(base_dir.glob("*.safetensors")):
            digest.update(hashlib.sha256(weights.read_bytes()).digest())
        entry = self.cache / digest.hexdigest()[:24]
        if not (entry / "done").exists():
            made = self.engine.embed(base_dir, out_dir, seed, count)
            tmp = entry.with_name(entry.name + f".tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(out_dir, tmp / "model")
            (tmp / "fingerprints.json").write_text(json.dumps(made.fingerprints))
            (tmp / "done").write_text("")
            shutil.rmtree(entry, ignore_errors=True)
            tmp.rename(entry)
            return made  # type: ignore[no-any-return]
        shutil.rmtree(out_dir, ignore_errors=True)
        shutil.copytree(entry / "model", out_dir)
        pairs = [(str(k), str(r)) for k, r in json.loads((entry / "fingerprints.json").read_text())]
        return FingerprintedCopy(directory=out_dir, fingerprints=pairs, seconds=0.0)


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


class SystemPrompt:
    """ASGI wrapper: prepends ``system`` to the prompt of every /v1/completions request."""

    def __init__(self, app: Any, system: str) -> None:
        self.app = app
        self.system = system

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/completions":
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        data = json.loads(body)
        data["prompt"] = self.system + data["prompt"]
        rewritten = json.dumps(data).encode()
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        headers.append((b"content-length", str(len(rewritten)).encode()))
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": rewritten, "more_body": False}
            return await receive()

        await self.app({**scope, "headers": headers}, replay, send)


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

    def rogue(self, name: str, *, model: tuple[Any, Any] | None = None, system: str = "") -> Server:
        """An unregistered endpoint serving host ``name``'s copy (no receipts: not metered);
        ``model`` replaces the weights (e.g. a fine-tuned copy), ``system`` is put in front
        of every prompt, as a deployment with its own system prompt would."""
        engine = InferenceEngine(*(model or self.models[name]), max_batch_size=4)
        config = ServingConfig(
            model_name="totally-original-llm",
            copy_id=0,
            signer="0x" + "00" * 20,
            chain_id=self.chain_id,
            verifying_contract=self.challenge_manager,
            max_tokens_limit=64,
            max_prompt_tokens=512,
        )
        app = create_app(engine, None, config)
        return serve(SystemPrompt(app, system) if system else app, free_port())

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

    # a stable secret: the same copies get the same seeds run after run, so the embedding cache
    # below can serve them (fresh machines pay the embedding once)
    secret = CACHE / "master.secret"
    if not secret.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
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
    oracle.service.fingerprint = CachedEngine(oracle.service.fingerprint, CACHE / "copies")
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
