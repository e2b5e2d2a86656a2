"""Wiring: settings → account, chain adapter, epoch clock, ledger, engine, app, reporter, server."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.chain.keystore import resolve_account
from agents.host.epochs import EpochClock
from agents.host.errors import ConfigError
from agents.host.ledger import ReceiptLedger, ReceiptSigner
from agents.host.settings import HostSettings

log = logging.getLogger(__name__)


@dataclass
class HostContext:
    """The pieces every host command needs; ``chain`` is None when running offline."""

    settings: HostSettings
    signer: ReceiptSigner
    clock: EpochClock
    chain: Any  # agents.host.chain.HostChain | None (imported lazily: web3 is slow to import)

    def open_ledger(self, copy_id: int | None = None, path: Path | None = None) -> ReceiptLedger:
        copy_id = self.settings.copy_id if copy_id is None else copy_id
        return ReceiptLedger(
            path or self.settings.state_dir / f"receipts-{copy_id}.sqlite3",
            copy_id=copy_id,
            signer=self.signer,
            clock=self.clock,
            durable=self.settings.durable,
        )


def build_context(settings: HostSettings) -> HostContext:
    if not settings.chain:
        account = resolve_account(settings.account, chain_id=settings.chain_id)
        signer = ReceiptSigner(account, settings.chain_id, settings.verifying_contract)
        clock = EpochClock(settings.epoch_genesis, settings.epoch_length_s)
        return HostContext(settings, signer, clock, None)
    from agents.host.chain import HostChain

    chain = HostChain.connect(settings)
    signer = ReceiptSigner(chain.account, chain.chain_id, chain.verifying_contract)
    genesis, length = chain.epoch_schedule()
    return HostContext(settings, signer, EpochClock(genesis, length), chain)


def serve(settings: HostSettings) -> None:
    """Run the server (and, with a chain, the reporter) until SIGINT/SIGTERM; then drain."""
    import uvicorn

    from agents.host.api import ServingConfig, create_app
    from agents.host.inference import InferenceEngine
    from agents.host.metering import Metering
    from agents.host.reporter import UsageReporter, schedule

    if settings.model_dir is None:
        raise ConfigError("no model to serve: pass --model-dir or set OML_HOST_MODEL_DIR")
    context = build_context(settings)
    if context.chain is not None:
        context.chain.check_copy(settings.copy_id)
    ledger = context.open_ledger()
    engine = InferenceEngine.load(
        settings.model_dir,
        settings.device,
        max_batch_size=settings.max_batch_size,
        batch_wait_s=settings.batch_wait_ms / 1000,
        max_queue=settings.max_queue,
    )
    scheduler: Any = None
    if context.chain is not None:
        reporter = UsageReporter(
            ledger,
            context.chain,
            context.clock,
            grace_s=settings.report_grace_s,
            warn_epochs=settings.warn_epochs,
        )
        scheduler = schedule(reporter, settings.report_interval_s)

    async def stop_reporter() -> None:
        if scheduler is not None:
            await asyncio.to_thread(scheduler.shutdown, True)

    config = ServingConfig(
        model_name=settings.model_name,
        copy_id=settings.copy_id,
        signer=context.signer.address,
        chain_id=context.signer.chain_id,
        verifying_contract=context.signer.verifying_contract,
        max_tokens_limit=settings.max_tokens_limit,
        default_max_tokens=settings.default_max_tokens,
        max_prompt_tokens=settings.max_prompt_tokens,
        max_body_bytes=settings.max_body_bytes,
    )
    app = create_app(
        engine, Metering(ledger) if settings.metering else None, config, on_shutdown=stop_reporter
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.listen_host,
            port=settings.port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=int(settings.shutdown_timeout_s),
        )
    )
    log.info("host %s serving copy %d", context.signer.address, settings.copy_id)
    server.run()
