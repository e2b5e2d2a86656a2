"""Assemble the oracle from settings and run it: event cursor + job worker (+ key service)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from agents.chain.deployments import Deployment
from agents.chain.events import EventCursor
from agents.chain.keystore import resolve_account
from agents.chain.protocol import Protocol
from agents.fingerprint.embedding import EmbedConfig
from agents.fingerprint.profiles import profile_config
from agents.oracle.adapters import ChainAdapter, StorageAdapter
from agents.oracle.fingerprint_adapter import FingerprintEngine
from agents.oracle.jobs import JobStore
from agents.oracle.secrets import MasterSecret
from agents.oracle.service import OracleConfig, OracleService
from agents.oracle.settings import OracleSettings
from agents.storage.client import IpfsStore

log = logging.getLogger(__name__)


@dataclass
class Oracle:
    service: OracleService
    cursor: EventCursor

    def step(self) -> int:
        """One round: pick up new requests, then advance due jobs. Returns jobs finished."""
        self.cursor.poll_once()
        return self.service.run_due()

    def run(self, stop: threading.Event, interval_s: float) -> None:
        while not stop.is_set():
            try:
                self.step()
            except Exception:
                log.exception("oracle round failed; retrying")
            stop.wait(interval_s)


def embed_config_of(settings: OracleSettings) -> EmbedConfig:
    """How the oracle fingerprints: ``settings.embed`` over profile ``settings.embed_profile``."""
    try:
        return profile_config(settings.embed_profile, **settings.embed)
    except ValueError as bad:
        raise ValueError(f"OML_ORACLE_EMBED is not a valid embedding config: {bad}") from bad


def build_oracle(settings: OracleSettings, embed_config: EmbedConfig | None = None) -> Oracle:
    """The oracle of ``settings``; ``embed_config`` (else ``embed_config_of(settings)``) is how
    it fingerprints."""
    if embed_config is None:
        embed_config = embed_config_of(settings)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    deployment = Deployment.load(settings.network)
    account = resolve_account(settings.account, chain_id=deployment.chain_id)
    protocol = Protocol.connect(account, settings.network)
    access = protocol.contract("AccessManager")
    cursor = EventCursor(
        protocol.w3, settings.state_dir / "oracle.db", name="oracle", contracts=[access],
        start_block=protocol.deployment.deploy_block, confirmations=settings.confirmations,
    )  # fmt: skip
    config = OracleConfig(
        work_dir=settings.state_dir / "work", chain_id=protocol.chain_id,
        access_manager=access.address, fingerprint_count=settings.fingerprint_count,
        recall_threshold=settings.recall_threshold,
    )  # fmt: skip
    service = OracleService(
        config, JobStore(cursor.db), MasterSecret.load(settings.master_secret),
        ChainAdapter(protocol), StorageAdapter(IpfsStore(), bytes(protocol.account.key)),
        FingerprintEngine(embed_config),
    )  # fmt: skip
    cursor.on("AccessRequested", service.on_access_requested)
    return Oracle(service=service, cursor=cursor)
