"""Async front of the receipt ledger with group commit.

Handlers await :meth:`Metering.issue`; a single task takes every call waiting at that moment
and books them with one ledger transaction (one fsync) on a dedicated thread, so the event
loop never blocks on signing or disk and throughput does not collapse under load.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from agents.host.ledger import Call, ReceiptLedger, SignedReceipt

log = logging.getLogger(__name__)

MAX_GROUP = 256


class Metering:
    def __init__(self, ledger: ReceiptLedger) -> None:
        self.ledger = ledger
        self._queue: asyncio.Queue[tuple[Call, asyncio.Future[SignedReceipt]] | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="oml-ledger")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="oml-metering")

    async def issue(self, prompt_hash: bytes, response_hash: bytes) -> SignedReceipt:
        """Persist and sign a receipt; returns once it is durably committed."""
        assert self._queue is not None, "metering not started"
        future: asyncio.Future[SignedReceipt] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((Call(prompt_hash, response_hash), future))
        return await future

    async def stop(self) -> None:
        """Book everything queued, then close the ledger (WAL checkpointed)."""
        if self._queue is not None and self._task is not None:
            self._queue.put_nowait(None)
            await self._task
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self.ledger.close)
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            item = await self._queue.get()
            group = []
            while item is not None:
                group.append(item)
                if len(group) >= MAX_GROUP or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            stopping = item is None
            if not group:
                continue
            calls = [call for call, _ in group]
            try:
                receipts = await loop.run_in_executor(self._executor, self.ledger.issue, calls)
            except Exception as error:
                log.exception("could not book %d receipts", len(group))
                for _, future in group:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), receipt in zip(group, receipts, strict=True):
                if future.done():  # the client went away; the call is booked anyway
                    continue
                assert receipt is not None
                future.set_result(receipt)
