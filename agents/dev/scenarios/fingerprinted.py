"""The stage of the leak scenarios: real fingerprinted copies, a key service, rogue endpoints.

Everything that decides a leak is the agents' own code: the oracle's job pipeline
(:class:`agents.oracle.service.OracleService`: fetch, embed with :mod:`agents.fingerprint`,
recall check, seal, deliver) and its HTTP key service, a rogue OpenAI-compatible endpoint
built from the host server's app (:func:`agents.host.api.create_app`, without metering), and
the prover bot (:class:`agents.prover.service.Prover`) with its key client, detection rule,
evidence, commit, reveal and payout. What a scenario on a bare Anvil cannot have is replaced
at the edges only:

- **chain roles**: the oracle's ``deliverCopy`` is sent as the deployment's oracle account
  through Anvil's impersonation (so it also runs on forks);
- **IPFS**: the oracle's base weights come from the local tiny model, sealed copies and the
  prover's evidence documents are kept in memory under the CIDs a node's ``add`` would give
  (:func:`agents.storage.unixfs.cid_of_bytes`);
- **embedding time**: embedding 16 fingerprints into the tiny model takes 40-60 s on two
  cores, so each scenario *slot* ("a", "b") is embedded once from a fixed seed and kept under
  ``.cache/dev-scenarios/``. A copy in slot a carries the same 16 key/response pairs in every
  replay; its salts, Merkle leaves and root are its own (derived from the copy id by a fresh
  oracle master secret), so keys, proofs and challenges are per copy as in production.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from agents.dev.actors import Creator, Host
from agents.dev.devchain import DevChain
from agents.dev.errors import ScenarioError
from agents.dev.scenarios.common import COLLATERAL, HOST_FUNDS, PRICE, bonded_prover
from agents.dev.scenarios.registry import ScenarioContext
from agents.oracle.adapters import ChainAdapter

if TYPE_CHECKING:
    from agents.dev.actors import Prover as ProverActor
    from agents.fingerprint.embedding import EmbedConfig
    from agents.oracle.ports import FingerprintedCopy, ModelVersion
    from agents.oracle.service import OracleService
    from agents.prover.service import Prover

FINGERPRINTS = 16  # per copy: the prover's whole key budget for one copy
SLOT_SEEDS = {
    "a": hashlib.sha256(b"oml-dev-scenario-slot-a").digest(),
    "b": hashlib.sha256(b"oml-dev-scenario-slot-b").digest(),
}
ROGUE_MODEL = "totally-original-llm"


# ---------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """An ASGI app served by uvicorn on a thread of this process."""

    url: str
    server: Any
    thread: threading.Thread

    @classmethod
    def start(cls, app: Any) -> Server:
        import uvicorn

        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        )
        thread = threading.Thread(target=server.run, name=f"scenario-server-{port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                raise ScenarioError(f"a scenario server on port {port} did not start")
            time.sleep(0.02)
        return cls(f"http://127.0.0.1:{port}", server, thread)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class MemoryIpfs:
    """Content-addressed bytes in memory, under the CIDs a node's default ``add`` gives.

    Stands in for :class:`agents.storage.client.IpfsClient` where a scenario has no node: the
    prover's evidence upload (``add_bytes``) and reading it back (``cat``).
    """

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def __call__(self) -> MemoryIpfs:  # the prover's ``ipfs`` factory
        return self

    def __enter__(self) -> MemoryIpfs:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_bytes(self, data: bytes, *, cid_version: int = 0, pin: bool = True) -> str:
        from agents.storage.unixfs import cid_of_bytes

        cid = cid_of_bytes(data, cid_version)
        self.blobs[cid] = bytes(data)
        return cid

    def cat(self, cid: str, **_: Any) -> bytes:
        return self.blobs[str(cid)]


# ---------------------------------------------------------------------- oracle ports


class ImpersonatedOracleChain(ChainAdapter):
    """The oracle's chain port: reads through a protocol client, delivers as the oracle role."""

    def __init__(self, dev: DevChain, reader: Creator) -> None:
        super().__init__(reader.protocol)
        self.dev = dev

    def deliver(self, copy_id: int, fp_root: bytes, fp_count: int, copy_cid: str) -> str:
        call = self.dev.access.functions.deliverCopy(copy_id, fp_root, fp_count, copy_cid)
        receipt = self.dev.send_as(self.dev.role("oracle"), call, label="deliverCopy")
        return str(receipt["transactionHash"].to_0x_hex())


class LocalModelStorage:
    """The oracle's storage port without a node: the base is the local tiny model; copies are
    sealed to their host for real and 'uploaded' to memory (the CID of the sealed index)."""

    def __init__(self, base_dir: Path, store: MemoryIpfs) -> None:
        self.base_dir = base_dir
        self.store = store

    def fetch_base(self, version: ModelVersion, dest: Path) -> Path:
        shutil.copytree(self.base_dir, dest)
        return dest

    def encrypt_copy(self, directory: Path, recipient_pubkey: bytes, out_dir: Path) -> Path:
        from agents.storage.models import seal_folder

        return seal_folder(directory, out_dir, recipient_pubkey)

    def upload_copy(self, encrypted_dir: Path) -> str:
        from agents.storage.models import SEALED_INDEX

        return self.store.add_bytes((encrypted_dir / SEALED_INDEX).read_bytes())


def _cached_engine_class() -> type:
    from agents.oracle.fingerprint_adapter import FingerprintEngine
    from agents.oracle.ports import FingerprintedCopy

    class SlotEngine(FingerprintEngine):
        """The oracle's fingerprint engine, embedding each slot's seed once (disk cache)."""

        def __init__(self, config: EmbedConfig, cache: Path) -> None:
            super().__init__(config)
            self.cache = cache
            self.slots: dict[bytes, bytes] = {}  # the oracle's copy seed -> the slot's seed
            self.embedded: list[float] = []  # seconds of each embedding actually run

        def embed(
            self, base_dir: Path, out_dir: Path, seed: bytes, count: int
        ) -> FingerprintedCopy:
            seed = self.slots.get(seed, seed)
            digest = hashlib.sha256(seed + str(count).encode())
            digest.update(self.config.model_dump_json().encode())
            for weights in sorted(base_dir.glob("*.safetensors")):
                digest.update(hashlib.sha256(weights.read_bytes()).digest())
            entry = self.cache / digest.hexdigest()[:24]
            if not (entry / "done").exists():
                made = super().embed(base_dir, out_dir, seed, count)
                self.embedded.append(made.seconds)
                tmp = entry.with_name(f"{entry.name}.tmp{os.getpid()}")
                shutil.rmtree(tmp, ignore_errors=True)
                shutil.copytree(out_dir, tmp / "model")
                (tmp / "model" / "fingerprints.json").unlink(missing_ok=True)
                (tmp / "fingerprints.json").write_text(json.dumps(made.fingerprints))
                (tmp / "done").write_text("")
                try:
                    tmp.rename(entry)
                except OSError:  # a concurrent run cached it first
                    shutil.rmtree(tmp, ignore_errors=True)
                return made
            shutil.rmtree(out_dir, ignore_errors=True)
            shutil.copytree(entry / "model", out_dir)
            pairs = json.loads((entry / "fingerprints.json").read_text())
            return FingerprintedCopy(
                directory=out_dir, fingerprints=[(str(k), str(r)) for k, r in pairs], seconds=0.0
            )

    return SlotEngine


# ---------------------------------------------------------------------- the world


@dataclass
class LeakWorld:
    """A model, its hosts' delivered fingerprinted copies, the oracle's key service."""

    ctx: ScenarioContext
    root: Path
    creator: Creator
    model_id: int
    hosts: dict[str, Host]
    oracle: OracleService
    keys: Server
    store: MemoryIpfs
    servers: list[Server] = field(default_factory=list)
    provers: list[Prover] = field(default_factory=list)

    @property
    def dev(self) -> DevChain:
        return self.ctx.dev

    def copy_id(self, host: str) -> int:
        return self.hosts[host].copy_id

    def copy_dir(self, host: str) -> Path:
        """The copy as delivered to the host (the oracle kept the plaintext for the scenario)."""
        job = self.oracle.jobs.get(self.copy_id(host))
        assert job is not None
        return Path(str(job.data["copy_dir"]))

    def load(self, host: str) -> tuple[Any, Any]:
        from agents.fingerprint.models import load_model

        return load_model(self.copy_dir(host))

    def rogue(self, model: tuple[Any, Any]) -> Server:
        """An unregistered endpoint serving ``model`` (the host server's app, no receipts)."""
        from agents.host.api import ServingConfig, create_app
        from agents.host.inference import InferenceEngine

        config = ServingConfig(
            model_name=ROGUE_MODEL,
            copy_id=0,
            signer="0x" + "00" * 20,
            chain_id=self.dev.chain_id,
            verifying_contract=self.dev.challenges.address,
            max_tokens_limit=64,
            max_prompt_tokens=512,
        )
        server = Server.start(create_app(InferenceEngine(*model, max_batch_size=4), None, config))
        self.servers.append(server)
        return server

    def prover(self, name: str = "prover", **settings: Any) -> tuple[ProverActor, Prover]:
        """A fresh bonded prover account and the prover bot acting for it."""
        from agents.chain.keystore import public_key_bytes
        from agents.prover.chain import ProverChain
        from agents.prover.keys import KeyServiceClient
        from agents.prover.service import Prover
        from agents.prover.settings import ProverSettings
        from agents.prover.state import ProverState

        actor = bonded_prover(self.ctx, name)
        config = ProverSettings(
            _env_file=None,  # type: ignore[call-arg]
            network=self.dev.deployment.network,
            state_dir=self.root / name,
            key_service_url=self.keys.url,
            keys_per_copy=FINGERPRINTS,
            reveal_confirmations=1,
            host_probe_calls=0,
            host_probe_keys=0,
            challenge_missed_reports=False,
            **settings,
        )
        chain = ProverChain(self.dev.protocol(actor.account))
        state = ProverState.open(
            config.state_path,
            public_key=public_key_bytes(actor.account),
            private_key=bytes(actor.account.key),
            chain_id=self.dev.chain_id,
        )
        state.bind_identity(actor.address, chain.manager_address)
        client = KeyServiceClient(
            self.keys.url,
            actor.account,
            self.dev.chain_id,
            timeout_s=config.http_timeout_s,
            ttl_s=config.key_request_ttl_s,
        )
        bot = Prover(config, chain, state, client, ipfs=cast(Any, self.store))
        self.provers.append(bot)
        return actor, bot

    def close(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        self.keys.stop()
        for bot in self.provers:
            bot.state.db.close()


@contextmanager
def leak_world(ctx: ScenarioContext, slots: dict[str, str]) -> Iterator[LeakWorld]:
    """A fresh model and one delivered copy per ``{host name: slot}``, with the key service up;
    everything started here is stopped, and its files removed, on the way out."""
    from agents.chain.events import EventCursor
    from agents.fingerprint.models import cache_root, tiny_embed_config, tiny_model_dir
    from agents.oracle.jobs import JobState, JobStore
    from agents.oracle.keyservice import KeyServiceLimits
    from agents.oracle.keyservice import create_app as key_service_app
    from agents.oracle.secrets import MasterSecret
    from agents.oracle.service import OracleConfig, OracleService

    dev = ctx.dev
    root = Path(tempfile.mkdtemp(prefix="oml-scenario-"))
    keys: Server | None = None
    world: LeakWorld | None = None
    db: sqlite3.Connection | None = None
    try:
        dev.node.warp_to(dev.epoch_end(dev.current_epoch()))  # a whole epoch of room ahead
        creator = Creator.funded(dev, "creator")
        model_id = creator.publish_model(price_per_call=PRICE, min_collateral=COLLATERAL)
        first_block = dev.node.block_number()
        hosts = {}
        for name in slots:
            hosts[name] = Host.funded(dev, name, token=HOST_FUNDS)
            hosts[name].license(model_id, COLLATERAL)

        # the oracle, as `oml oracle run` assembles it, with the ports of a node-less scenario
        store = MemoryIpfs()
        cursor = EventCursor(
            dev.w3,
            root / "oracle.db",
            name="oracle",
            contracts=[dev.access],
            start_block=first_block,
        )
        db = cursor.db
        engine = _cached_engine_class()(tiny_embed_config(), cache_root() / "dev-scenarios")
        master = MasterSecret.create(root / "master.secret")
        config = OracleConfig(
            work_dir=root / "oracle",
            chain_id=dev.chain_id,
            access_manager=str(dev.access.address),
            fingerprint_count=FINGERPRINTS,
            recall_threshold=0.9,
            keep_plaintext=True,  # the leaker's copy: the rogue serves it
        )
        oracle = OracleService(
            config,
            JobStore(cursor.db),
            master,
            ImpersonatedOracleChain(dev, creator),
            LocalModelStorage(tiny_model_dir(0), store),
            engine,
        )
        for name, slot in slots.items():
            seed = master.copy_seed(dev.chain_id, config.access_manager, hosts[name].copy_id)
            engine.slots[seed] = SLOT_SEEDS[slot]
        cursor.on("AccessRequested", oracle.on_access_requested)
        cursor.poll_once()
        started = time.monotonic()
        oracle.run_due()
        for name, host in hosts.items():
            job = oracle.jobs.get(host.copy_id)
            if job is None or job.state != JobState.DONE:
                raise ScenarioError(
                    f"the oracle did not deliver {name}'s copy {host.copy_id}: "
                    f"{job.state.value + ' ' + str(job.last_error) if job else 'no job'}"
                )
        recalls = {
            name: oracle.jobs.get(h.copy_id).data.get("recall")  # type: ignore[union-attr]
            for name, h in hosts.items()
        }
        ctx.fact("modelId", model_id)
        ctx.fact("copyIds", {name: h.copy_id for name, h in hosts.items()})
        ctx.fact("oracleRecall", recalls)
        ctx.fact("embeddingSeconds", [round(s, 1) for s in engine.embedded])
        cached = "" if engine.embedded else " (embeddings from the cache)"
        ctx.step(
            f"creator registered model {model_id}; "
            + ", ".join(
                f"{n} staked {COLLATERAL // 10**6:,} mUSD for copy {h.copy_id}"
                for n, h in hosts.items()
            )
            + f"; the oracle embedded {FINGERPRINTS} fingerprints in each tiny copy, checked "
            f"recall {recalls}, sealed and delivered them in {time.monotonic() - started:.0f}s"
            + cached
        )
        keys = Server.start(
            key_service_app(oracle, KeyServiceLimits(keys_per_copy_per_window=FINGERPRINTS))
        )
        world = LeakWorld(ctx, root, creator, model_id, hosts, oracle, keys, store)
        yield world
    finally:
        if world is not None:
            world.close()
        elif keys is not None:
            keys.stop()
        if db is not None:
            db.close()
        shutil.rmtree(root, ignore_errors=True)
