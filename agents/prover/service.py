"""The prover at work: sync copies, hold keys, probe hosts and suspects, challenge, collect.

Each job is a method that does one idempotent pass and can be run on its own (tests,
``oml prover run --once``) or on an APScheduler schedule (``oml prover run``):

``sync``            new copies and deliveries from AccessManager events (event cursor);
``refresh_keys``    top up every live copy's fresh keys from the oracle key service;
``probe_hosts``     ordinary prompts plus a key to every registered endpoint; keep receipts;
``audit``           receipts vs usage reports → provable challenges, submitted at once;
``probe_watchlist`` keys of all copies against suspect endpoints → leak decisions, evidence;
``advance``         every open challenge one step along commit → reveal → liveness → payout.

Crash safety: a challenge row is written (with what its transaction will contain) before the
transaction is sent; on the next pass a row caught mid-way is repaired from the chain — a
commit is looked up among our ``LeakCommitted`` events, a provable challenge by the contract's
``*Punished`` flag — so nothing is sent twice and nothing is lost.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from agents.chain.errors import ChainError, TransactionFailed
from agents.chain.events import ChainEvent, EventCursor
from agents.chain.keystore import public_key_bytes, resolve_account
from agents.chain.protocol import Protocol
from agents.chain.receipts import Receipt
from agents.config import get_settings
from agents.prover import audit as rules
from agents.prover.chain import (
    CHALLENGEABLE,
    CopyState,
    LeakState,
    ProverChain,
    leak_commitment,
)
from agents.prover.errors import KeyIntegrityError, KeyServiceError, NotRegistered, ProbeError
from agents.prover.evidence import encode, leak_evidence
from agents.prover.keys import KeyServiceClient, check_key
from agents.prover.probing import (
    EndpointClient,
    Exchange,
    ProbeItem,
    base_url,
    check_receipt,
    key_max_tokens,
    schedule,
)
from agents.prover.settings import ProverSettings
from agents.prover.state import (
    OPEN_LEAK_STATES,
    ChallengeRow,
    CopyRow,
    KeyMaterial,
    ProverState,
    StoredReceipt,
)
from agents.storage.client import IpfsClient

log = logging.getLogger(__name__)

# Test-only fault injection: exit abruptly (like kill -9) right after the named step.
CRASH_AFTER_ENV = "OML_PROVER_CRASH_AFTER"

SCREEN_POOL = 4  # screening draws from up to this many times screen_keys exposed keys per copy

TERMINAL = {
    LeakState.UPHELD: "upheld",
    LeakState.REJECTED: "rejected",
    LeakState.TIMED_OUT: "timed-out",
    LeakState.EXPIRED: "expired",
}


def _crash_point(name: str) -> None:
    if os.environ.get(CRASH_AFTER_ENV) == name:
        os._exit(137)


@dataclass
class StepReport:
    """What one pass of every job did (``oml prover run --once --json``)."""

    synced: int = 0
    keys_added: int = 0
    host_probes: int = 0
    receipts: int = 0
    watch_probes: int = 0
    detections: list[dict[str, Any]] = field(default_factory=list)
    submitted: list[dict[str, Any]] = field(default_factory=list)
    transitions: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Prover:
    def __init__(
        self,
        settings: ProverSettings,
        chain: ProverChain,
        state: ProverState,
        keys: KeyServiceClient,
        *,
        ipfs: Callable[[], IpfsClient] = IpfsClient,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.chain = chain
        self.state = state
        self.key_service = keys
        self.ipfs = ipfs
        self.rng = rng or random.Random()
        self.cursor = EventCursor(
            chain.w3,
            settings.state_path,
            name="prover",
            contracts=[chain.access],
            start_block=chain.deployment.deploy_block,
        )
        # one connection for the cursor and the state: share it, under the state's lock
        self.cursor.db.close()
        self.cursor.db = state.db
        self.cursor.on("AccessRequested", self._on_access_requested)
        self.cursor.on("CopyDelivered", self._on_copy_delivered)

    @classmethod
    def build(cls, settings: ProverSettings, *, rpc_url: str | None = None) -> Prover:
        from agents.chain.deployments import Deployment

        deployment = Deployment.load(settings.network)
        account = resolve_account(settings.account, chain_id=deployment.chain_id)
        protocol = Protocol.connect(
            account, settings.network, rpc_url=rpc_url or get_settings().rpc_url
        )
        chain = ProverChain(protocol)
        state = ProverState.open(
            settings.state_path,
            public_key=public_key_bytes(account),
            private_key=bytes(account.key),
            chain_id=deployment.chain_id,
        )
        state.bind_identity(account.address, chain.manager_address)
        keys = KeyServiceClient(
            settings.key_service_url,
            account,
            deployment.chain_id,
            timeout_s=settings.http_timeout_s,
            ttl_s=settings.key_request_ttl_s,
        )
        return cls(settings, chain, state, keys)

    # ================================================================== events

    def _on_access_requested(self, event: ChainEvent, conn: Any) -> None:
        args = event.args
        ProverState.upsert_copy(
            conn,
            int(args["copyId"]),
            int(args["modelId"]),
            str(args["host"]),
            str(args["endpoint"]),
        )

    def _on_copy_delivered(self, event: ChainEvent, conn: Any) -> None:
        args = event.args
        ProverState.set_delivery(
            conn, int(args["copyId"]), "0x" + bytes(args["fpRoot"]).hex(), int(args["fpCount"])
        )

    def sync(self) -> int:
        with self.state.lock:
            return self.cursor.poll_once()

    # ================================================================== keys

    def require_registered(self) -> None:
        if not self.chain.is_prover():
            raise NotRegistered(
                f"{self.chain.address} has no prover bond: run `oml prover register` first"
            )

    def live_copies(self, model_id: int | None = None) -> list[CopyRow]:
        """Delivered copies that can still be challenged (Active or Exiting)."""
        self.sync()  # cheap when nothing is new; every job sees the copies the chain has
        out = []
        for row in self.state.copies(model_id):
            if row.fp_root is None:
                continue
            if CopyState(self.chain.copy(row.copy_id).state) in CHALLENGEABLE:
                out.append(row)
        return out

    def refresh_keys(
        self, copies: list[CopyRow] | None = None, *, target: int | None = None
    ) -> int:
        """Top up fresh keys of ``copies`` (default: every live copy) to ``target``."""
        want = target if target is not None else self.settings.keys_per_copy
        added = 0
        for row in copies if copies is not None else self.live_copies():
            if row.keys_exhausted:
                continue
            missing = want - self.state.count_keys(row.copy_id, ("fresh",))
            if missing > 0:
                added += self._fetch_keys(row, missing)
        return added

    def _fetch_keys(self, row: CopyRow, count: int) -> int:
        try:
            batch = self.key_service.request(row.copy_id, count)
        except KeyServiceError as error:
            if error.status == 410:
                self.state.mark_keys_exhausted(row.copy_id)
            if error.status == 403:
                raise NotRegistered(str(error)) from error
            log.warning("%s", error)
            return 0
        info = self.chain.copy(row.copy_id)
        if batch.fp_root != info.fp_root:
            log.error("key service root for copy %d differs from the chain's", row.copy_id)
        good, bad = [], []
        for material in batch.keys:
            try:
                check_key(material, info.fp_root, info.fp_count)
                good.append(material)
            except KeyIntegrityError as error:
                bad.append(material)
                self.state.add_anomaly(
                    self.settings.key_service_url, row.copy_id, "invalid-key", str(error)
                )
                log.error("%s", error)
        self.state.store_keys(bad, status="invalid")
        added = self.state.store_keys(good)
        log.info("copy %d: %d new key(s) from the key service", row.copy_id, added)
        return added

    # ================================================================== registered hosts

    def probe_hosts(self, report: StepReport | None = None) -> int:
        """One round against every live copy's registered endpoint; returns probes sent."""
        report = report or StepReport()
        sent = 0
        for row in self.live_copies():
            try:
                base_url(row.endpoint)
            except ProbeError:
                continue  # not an http(s) endpoint: nothing to probe
            keys = self._host_probe_keys(row)
            items = schedule(keys, self.settings.host_probe_calls, self.rng)
            if not items:
                continue
            max_tokens = key_max_tokens(keys, self.settings.host_probe_max_tokens)
            exchanges = self._send(
                row.endpoint, items, max_tokens, purpose="host", copy_hint=row.copy_id, model=None
            )
            sent += len(exchanges)
            observed = self.chain.epoch_at(self.chain.now())
            for exchange in exchanges:
                report.receipts += self._keep_receipt(exchange, row, observed) is not None
            self.state.advance_keys(row.copy_id, [k.index for k in keys], "exposed")
        report.host_probes += sent
        return sent

    def _host_probe_keys(self, row: CopyRow) -> list[KeyMaterial]:
        want = self.settings.host_probe_keys
        if want == 0:
            return []
        # a key already shown to this host reveals nothing new: reuse those first
        exposed = self.state.keys(row.copy_id, ("exposed",))
        chosen = self.rng.sample(exposed, min(want, len(exposed)))
        if len(chosen) < want:
            if self.state.count_keys(row.copy_id) < want - len(chosen):
                self.refresh_keys([row], target=want - len(chosen))
            chosen += self.state.keys(row.copy_id, ("fresh",), limit=want - len(chosen))
        return chosen

    def _send(
        self,
        endpoint: str,
        items: list[ProbeItem],
        max_tokens: int,
        *,
        purpose: str,
        copy_hint: int | None,
        model: str | None,
    ) -> list[Exchange]:
        exchanges = []
        with EndpointClient(
            endpoint, timeout_s=self.settings.http_timeout_s, model=model
        ) as client:
            try:
                client.model()
            except ProbeError as error:
                self.state.add_anomaly(endpoint, copy_hint, "unreachable", str(error))
                log.warning("%s", error)
                return []
            for item in items:
                exchange = client.complete(item, max_tokens)
                exchanges.append(exchange)
                self.state.add_probe(
                    endpoint=endpoint,
                    purpose=purpose,
                    seconds=exchange.seconds,
                    copy_id=item.key.copy_id if item.key else copy_hint,
                    key_index=item.key.index if item.key else None,
                    matched=exchange.matched,
                    status=exchange.status,
                    error=exchange.error,
                )
        return exchanges

    def _keep_receipt(self, exchange: Exchange, row: CopyRow, observed: int) -> int | None:
        if exchange.text is None:
            return None
        if exchange.receipt is None:
            self.state.add_anomaly(
                row.endpoint,
                row.copy_id,
                "no-receipt",
                "a completed call came back without a signed receipt",
            )
            return None
        try:
            checked = check_receipt(
                exchange.receipt,
                prompt=exchange.prompt,
                text=exchange.text,
                copy_id=row.copy_id,
                host=row.host,
                chain_id=self.chain.chain_id,
                verifying_contract=self.chain.manager_address,
            )
        except ProbeError as error:
            self.state.add_anomaly(row.endpoint, row.copy_id, "bad-receipt", str(error))
            return None
        for problem in checked.problems:
            self.state.add_anomaly(row.endpoint, row.copy_id, problem.split(":")[0], problem)
        if not checked.valid:
            return None
        r = checked.receipt
        if abs(r.epoch - observed) > 1:
            self.state.add_anomaly(
                row.endpoint,
                row.copy_id,
                "epoch-mismatch",
                f"receipt seq {r.seq} names epoch {r.epoch}, the chain is in epoch {observed}",
            )
        return self.state.add_receipt(
            copy_id=r.copy_id,
            epoch=r.epoch,
            seq=r.seq,
            prompt_hash=r.prompt_hash,
            response_hash=r.response_hash,
            signature=checked.signature,
            endpoint=row.endpoint,
            observed_epoch=observed,
        )

    # ================================================================== audit

    def audit(self, report: StepReport | None = None) -> list[dict[str, Any]]:
        """Compare receipts with reports; submit every provable challenge found."""
        report = report or StepReport()
        submitted: list[dict[str, Any]] = []
        self._repair_provable(report)
        _, now = self.chain.head()
        closed = self.chain.epoch_at(now) - 1
        result = rules.audit_receipts(
            self.state.receipts(status="pending"), closed_through=closed, bound=self.chain.seq_bound
        )
        self.state.set_receipt_status(result.ok, "ok")
        for finding in result.under_reports:
            done = self._submit_under_report(finding, report)
            if done:
                submitted.append(done)
        for a, b in rules.equivocations(self.state.receipts_sharing_a_seq()):
            done = self._submit_equivocation(a, b, report)
            if done:
                submitted.append(done)
        if self.settings.challenge_missed_reports:
            submitted += self._missed_reports(now, report)
        report.submitted += submitted
        return submitted

    def _receipt(self, stored: StoredReceipt) -> Receipt:
        return Receipt(
            copy_id=stored.copy_id,
            epoch=stored.epoch,
            seq=stored.seq,
            prompt_hash=stored.prompt_hash,
            response_hash=stored.response_hash,
        )

    def _challengeable(self, copy_id: int) -> bool:
        return CopyState(self.chain.copy(copy_id).state) in CHALLENGEABLE

    def _submit_under_report(
        self, finding: rules.UnderReport, report: StepReport
    ) -> dict[str, Any] | None:
        ids = [
            r.id
            for r in self.state.receipts(status="pending", copy_id=finding.copy_id)
            if r.epoch == finding.epoch and r.seq > finding.bound
        ]
        if self.chain.under_report_punished(finding.copy_id, finding.epoch):
            self.state.set_receipt_status(ids, "punished")
            return None
        if not self._challengeable(finding.copy_id):
            self.state.set_receipt_status(ids, "moot")
            return None
        row_id = self.state.new_challenge(
            "under-report",
            finding.copy_id,
            "submitting",
            epoch=finding.epoch,
            seq=finding.receipt.seq,
            data={"receipt": finding.receipt.id, "bound": finding.bound},
        )
        if row_id is None:
            return None
        log.warning(
            "copy %d under-reported epoch %d: receipt seq %d > reported lastSeq %d",
            finding.copy_id,
            finding.epoch,
            finding.receipt.seq,
            finding.bound,
        )
        result = self._send_provable(
            row_id,
            lambda: self.chain.challenge_under_report(
                self._receipt(finding.receipt), finding.receipt.signature
            ),
            report,
        )
        self.state.set_receipt_status(ids, "under-reported")
        return result

    def _submit_equivocation(
        self, a: StoredReceipt, b: StoredReceipt, report: StepReport
    ) -> dict[str, Any] | None:
        if any(
            c.seq == a.seq for c in self.state.challenges(kind="equivocation", copy_id=a.copy_id)
        ):
            return None
        if self.chain.equivocation_punished(a.copy_id, a.seq):
            self.state.set_receipt_status([a.id, b.id], "punished")
            return None
        if not self._challengeable(a.copy_id):
            return None
        row_id = self.state.new_challenge(
            "equivocation", a.copy_id, "submitting", seq=a.seq, data={"receipts": [a.id, b.id]}
        )
        if row_id is None:
            return None
        log.warning("copy %d signed two different receipts with seq %d", a.copy_id, a.seq)
        result = self._send_provable(
            row_id,
            lambda: self.chain.challenge_equivocation(
                self._receipt(a), a.signature, self._receipt(b), b.signature
            ),
            report,
        )
        self.state.set_receipt_status([a.id, b.id], "equivocation")
        return result

    def _missed_reports(self, now: int, report: StepReport) -> list[dict[str, Any]]:
        out = []
        grace = self.chain.params().report_grace
        for row in self.live_copies():
            info = self.chain.copy_ledger(row.copy_id)
            for epoch in rules.missed_epochs(
                next_epoch=info.next_epoch,
                end_epoch=info.end_epoch,
                now=now,
                grace=grace,
                epoch_end=self.chain.epoch_end,
            ):
                if self.chain.missed_report_punished(row.copy_id, epoch):
                    continue
                row_id = self.state.new_challenge(
                    "missed-report", row.copy_id, "submitting", epoch=epoch
                )
                if row_id is None:
                    continue
                log.warning("copy %d never reported epoch %d", row.copy_id, epoch)
                copy_id = row.copy_id
                done = self._send_provable(
                    row_id, partial(self.chain.challenge_missed_report, copy_id, epoch), report
                )
                if done:
                    out.append(done)
        return out

    def _send_provable(
        self, row_id: int, send: Callable[[], Any], report: StepReport
    ) -> dict[str, Any] | None:
        try:
            mined = send()
        except TransactionFailed as error:
            row = self.state.challenge(row_id)
            assert row is not None
            if error.error_name == "AlreadyPunished" and self._adopt_provable(row):
                return self.state.challenge(row_id).as_dict()  # type: ignore[union-attr]
            final = error.error_name in {
                "AlreadyPunished",
                "CopyNotChallengeable",
                "NotUnderReported",
                "EpochNotMissed",
                "NotEquivocation",
            }
            self.state.update_challenge(
                row_id, last_error=str(error), **({"state": "lost"} if final else {})
            )
            if not final:
                self._forget(row)  # transient: found and sent again by the next audit
            report.errors.append(str(error))
            log.error("provable challenge %d failed: %s", row_id, error)
            return None
        _crash_point("provable-sent")
        self.state.update_challenge(
            row_id,
            state="slashed",
            onchain_id=mined.challenge_id,
            slashed=mined.slashed,
            reward=mined.reward,
            data={**self._data(row_id), "tx": mined.tx_hash},
        )
        self._claim()
        row = self.state.challenge(row_id)
        assert row is not None
        return row.as_dict()

    def _data(self, row_id: int) -> dict[str, Any]:
        row = self.state.challenge(row_id)
        return dict(row.data) if row else {}

    def _repair_provable(self, report: StepReport) -> None:
        """Rows left in ``submitting`` by a crash: adopt what the chain recorded, else resend."""
        for row in self.state.challenges(states=("submitting",)):
            if not self._punished(row):
                self._forget(row)  # never reached the chain: the next audit finds it again
            elif self._adopt_provable(row):
                report.transitions.append({"id": row.id, "to": "slashed", "repaired": True})
            else:
                self.state.update_challenge(row.id, state="lost")

    def _punished(self, row: ChallengeRow) -> bool:
        if row.kind == "equivocation":
            return self.chain.equivocation_punished(row.copy_id, int(row.seq or 0))
        if row.kind == "under-report":
            return self.chain.under_report_punished(row.copy_id, int(row.epoch or 0))
        return self.chain.missed_report_punished(row.copy_id, int(row.epoch or 0))

    def _adopt_provable(self, row: ChallengeRow) -> bool:
        """Find our ProvableChallenge for ``row`` (same copy and kind, not claimed by another
        row) and record it; False when someone else was first."""
        kind = {"under-report": 0, "equivocation": 1, "missed-report": 2}[row.kind]
        known = {
            c.onchain_id
            for c in self.state.challenges(copy_id=row.copy_id)
            if c.onchain_id is not None and c.kind != "leak"
        }
        for event in self.chain.logs(
            "ChallengeManager",
            "ProvableChallenge",
            copyId=row.copy_id,
            challenger=self.chain.address,
        ):
            args = event["args"]
            if int(args["kind"]) == kind and int(args["challengeId"]) not in known:
                self.state.update_challenge(
                    row.id,
                    state="slashed",
                    onchain_id=int(args["challengeId"]),
                    slashed=int(args["slashed"]),
                    reward=int(args["reward"]),
                )
                return True
        return False

    def _forget(self, row: ChallengeRow) -> None:
        """Drop a never-mined provable row so the offence can be found and sent again."""
        with self.state.transaction() as db:
            db.execute("DELETE FROM challenge WHERE id = ?", (row.id,))
            if row.kind == "under-report":
                db.execute(
                    "UPDATE receipt SET status = 'pending' WHERE copy_id = ? AND epoch = ? "
                    "AND status = 'under-reported'",
                    (row.copy_id, row.epoch),
                )
            if row.kind == "equivocation":
                db.execute(
                    "UPDATE receipt SET status = 'pending' WHERE copy_id = ? AND seq = ? "
                    "AND status = 'equivocation'",
                    (row.copy_id, row.seq),
                )

    # ================================================================== watch list

    def probe_watchlist(self, report: StepReport | None = None) -> list[dict[str, Any]]:
        report = report or StepReport()
        found = []
        for entry in self.state.watch_list():
            try:
                found += self.probe_endpoint(
                    entry["url"],
                    model_id=entry["modelId"],
                    model_name=entry["modelName"],
                    report=report,
                )
            except (ProbeError, ChainError, KeyServiceError) as error:
                report.errors.append(f"{entry['url']}: {error}")
                log.warning("watch %s: %s", entry["url"], error)
        return found

    def probe_endpoint(
        self,
        url: str,
        *,
        model_id: int | None = None,
        model_name: str | None = None,
        report: StepReport | None = None,
        only_copy: int | None = None,
        challenge: bool = True,
    ) -> list[dict[str, Any]]:
        """Screen ``url`` with keys of every copy (of ``model_id``), decide on fresh keys.

        ``only_copy`` tests one copy (a confirmation for a dispute); ``challenge=False`` records
        and publishes the decision without opening a challenge. A copy already under an open
        leak challenge is not tested again (it would only burn keys).
        """
        report = report or StepReport()
        s = self.settings
        own = base_url(url)
        accused = {c.copy_id for c in self.state.challenges(kind="leak", states=OPEN_LEAK_STATES)}
        copies = [
            c
            for c in self.live_copies(model_id)
            if not _same_endpoint(c.endpoint, own)
            and (c.copy_id == only_copy if only_copy is not None else c.copy_id not in accused)
        ]
        if not copies:
            self.state.record_watch_result(url, {"copies": 0})
            return []
        # stage 1: screening, to spend fresh keys only on suspects. It draws at random from a
        # small rotating pool of already-exposed keys (grown from fresh ones up to
        # SCREEN_POOL x screen_keys), so clean endpoints cost no fresh keys after the first
        # sessions and no screening prompt repeats every time.
        if s.screen_keys > 0:
            screen: list[KeyMaterial] = []
            for row in copies:
                screen += self._screening_keys(row)
            exchanges = self._probe_keys(url, screen, model_name, "screen")
            report.watch_probes += len(exchanges)
            hits = {e.key.copy_id for e in exchanges if e.key is not None and e.matched}
            suspects = [c for c in copies if c.copy_id in hits]
            screening = {
                "keysPerCopy": s.screen_keys,
                "copies": len(copies),
                "suspects": sorted(hits),
            }
        else:
            suspects, screening = copies, {}
        result: dict[str, Any] = {"copies": len(copies), "suspects": [c.copy_id for c in suspects]}
        if not suspects:
            self.state.record_watch_result(url, result)
            return []
        # stage 2: decision, on fresh keys only (never shown to anyone before)
        needed = rules.keys_needed(s.false_positive_bound, s.chance_bound, len(copies))
        per_copy = max(s.detect_keys, needed)
        decide: list[KeyMaterial] = []
        for row in suspects:
            if self.state.count_keys(row.copy_id) < per_copy:
                self.refresh_keys([row], target=per_copy)
            fresh = self.state.keys(row.copy_id, ("fresh",), limit=per_copy)
            if len(fresh) < needed:
                log.warning(
                    "copy %d: only %d fresh key(s), %d needed to decide at %.0e",
                    row.copy_id,
                    len(fresh),
                    needed,
                    s.false_positive_bound,
                )
            decide += fresh
        exchanges = self._probe_keys(url, decide, model_name, "decide")
        report.watch_probes += len(exchanges)
        outcomes: dict[int, list[bool]] = {c.copy_id: [] for c in suspects}
        for e in exchanges:
            if e.key is not None:
                outcomes[e.key.copy_id].append(bool(e.matched))
        decisions = rules.decide_leaks(
            outcomes,
            copies_tested=len(copies),
            fp_bound=s.false_positive_bound,
            chance_bound=s.chance_bound,
        )
        served = exchanges[0].request["model"] if exchanges else (model_name or "")
        found = []
        for decision in decisions:
            row = next(c for c in suspects if c.copy_id == decision.copy_id)
            mine = [e for e in exchanges if e.key is not None and e.key.copy_id == row.copy_id]
            found.append(
                self._record_decision(
                    url, served, row, decision, mine, exchanges, screening, challenge=challenge
                )
            )
        result["decisions"] = [
            {
                "copyId": d.copy_id,
                "accused": d.accused,
                "matched": d.verdict.matched,
                "queried": d.verdict.queried,
                "falsePositive": d.verdict.false_positive_probability,
            }
            for d in decisions
        ]
        self.state.record_watch_result(url, result)
        report.detections += found
        return found

    def _screening_keys(self, row: CopyRow) -> list[KeyMaterial]:
        want = self.settings.screen_keys
        pool = self.state.keys(row.copy_id, ("exposed",))
        grow = SCREEN_POOL * want - len(pool)
        if grow > 0:
            if self.state.count_keys(row.copy_id) < grow:
                self.refresh_keys([row])
            pool += self.state.keys(row.copy_id, ("fresh",), limit=grow)
        return self.rng.sample(pool, min(want, len(pool)))

    def _probe_keys(
        self, url: str, keys: list[KeyMaterial], model_name: str | None, purpose: str
    ) -> list[Exchange]:
        covers = round(len(keys) * self.settings.cover_per_key)
        items = schedule(keys, covers, self.rng)
        exchanges = self._send(
            url, items, key_max_tokens(keys, 8), purpose=purpose, copy_hint=None, model=model_name
        )
        by_copy: dict[int, list[int]] = {}
        for key in keys:
            by_copy.setdefault(key.copy_id, []).append(key.index)
        for copy_id, indices in by_copy.items():
            self.state.advance_keys(copy_id, indices, "exposed")
        return exchanges

    def _record_decision(
        self,
        url: str,
        served: str,
        row: CopyRow,
        decision: rules.LeakDecision,
        mine: list[Exchange],
        session: list[Exchange],
        screening: dict[str, Any],
        *,
        challenge: bool = True,
    ) -> dict[str, Any]:
        verdict = decision.verdict
        evidence_cid = None
        reveal_index = None
        if decision.accused:
            matched = [e.key for e in mine if e.key is not None and e.matched]
            candidates = [k for k in matched if not self.chain.key_revealed(k.copy_id, k.index)]
            if candidates:
                reveal_index = candidates[0].index
                document = leak_evidence(
                    chain_id=self.chain.chain_id,
                    challenge_manager=self.chain.manager_address,
                    access_manager=str(self.chain.access.address),
                    prover=self.chain.address,
                    endpoint=url,
                    model_name=served,
                    copy_id=row.copy_id,
                    model_id=row.model_id,
                    host=row.host,
                    fp_root=row.fp_root or "",
                    decision=decision,
                    reveal_index=reveal_index,
                    exchanges=mine,
                    cover=[e for e in session if e.key is None],
                    screening=screening,
                )
                with self.ipfs() as ipfs:
                    evidence_cid = ipfs.add_bytes(encode(document))
                # the document makes these keys public: never use them again
                self.state.advance_keys(
                    row.copy_id, [e.key.index for e in mine if e.key], "published"
                )
        detection_id = self.state.add_detection(
            endpoint=url,
            copy_id=row.copy_id,
            queried=verdict.queried,
            matched=verdict.matched,
            false_positive=verdict.false_positive_probability,
            threshold=decision.threshold,
            copies_tested=decision.copies_tested,
            accused=decision.accused,
            evidence_cid=evidence_cid,
            reveal_index=reveal_index,
        )
        outcome = {
            "detection": detection_id,
            "endpoint": url,
            "copyId": row.copy_id,
            "queried": verdict.queried,
            "matched": verdict.matched,
            "falsePositiveProbability": verdict.false_positive_probability,
            "threshold": decision.threshold,
            "accused": decision.accused,
            "evidenceCID": evidence_cid,
        }
        if decision.accused:
            log.warning(
                "leak: %s answers copy %d's keys (%d/%d, false-positive p=%.2e)",
                url,
                row.copy_id,
                verdict.matched,
                verdict.queried,
                verdict.false_positive_probability,
            )
        accused = decision.accused and evidence_cid and reveal_index is not None
        if accused and challenge and self.settings.auto_leak_challenge:
            outcome["challenge"] = self.open_leak(detection_id)
        return outcome

    # ================================================================== leak challenges

    def open_leak(self, detection_id: int) -> int | None:
        """Start a leak challenge from an accusing detection (commit on the next advance)."""
        rows = [d for d in self.state.detections() if d["id"] == detection_id]
        if not rows or not rows[0]["accused"] or rows[0]["evidenceCID"] is None:
            return None
        detection = rows[0]
        copy_id, index = int(detection["copyId"]), int(detection["revealIndex"])
        if self.state.challenges(kind="leak", copy_id=copy_id, states=OPEN_LEAK_STATES):
            log.info("copy %d already has an open leak challenge", copy_id)
            return None
        key = self.state.key(copy_id, index)
        if key is None or self.chain.key_revealed(copy_id, index):
            return None
        commitment = leak_commitment(
            self.chain.address, copy_id, index, key.salt, str(detection["evidenceCID"])
        )
        row_id = self.state.new_challenge(
            "leak",
            copy_id,
            "committing",
            key_index=index,
            detection_id=detection_id,
            evidence_cid=detection["evidenceCID"],
            commitment="0x" + commitment.hex(),
            data={"endpoint": detection["endpoint"]},
        )
        self.state.advance_keys(copy_id, [index], "committed")
        row = self.state.challenge(row_id) if row_id is not None else None
        if row is not None:
            self._advance_leak(row, StepReport())
        return row_id

    def advance(self, report: StepReport | None = None) -> StepReport:
        report = report or StepReport()
        for row in self.state.challenges(kind="leak", states=OPEN_LEAK_STATES):
            try:
                self._advance_leak(row, report)
            except (ChainError, ValueError) as error:
                self.state.update_challenge(row.id, last_error=str(error))
                report.errors.append(f"challenge {row.id}: {error}")
                log.error("challenge %d: %s", row.id, error)
        return report

    def _advance_leak(self, row: ChallengeRow, report: StepReport) -> None:
        before = row.state
        step = {
            "committing": self._commit,
            "committed": self._reveal,
            "revealed": self._follow,
            "disputed": self._follow,
        }[row.state]
        step(row)
        after = self.state.challenge(row.id)
        if after is not None and after.state != before:
            report.transitions.append(
                {"id": row.id, "from": before, "to": after.state, "challengeId": after.onchain_id}
            )
            if after.state == "committed":
                # a second look in the same pass: reveal at once if already final
                self._advance_leak(after, report)

    def _commitment(self, row: ChallengeRow) -> bytes:
        return bytes.fromhex(str(row.commitment).removeprefix("0x"))

    def _commit(self, row: ChallengeRow) -> None:
        commitment = self._commitment(row)
        if row.search_from_block is not None:
            found = self.chain.find_commit(commitment, row.search_from_block)
            if found is not None:
                self._committed(row, found.challenge_id, found.block_number, found.block_hash)
                return
        if row.key_index is not None and self.chain.key_revealed(row.copy_id, row.key_index):
            self.state.update_challenge(
                row.id, state="abandoned", last_error="key index burned before the commit"
            )
            return
        head, _ = self.chain.head()
        self.state.update_challenge(row.id, search_from_block=head)  # intent, before sending
        self.require_registered()
        mined = self.chain.commit_leak(commitment)
        _crash_point("commit-sent")
        self._committed(row, mined.challenge_id, mined.block_number, mined.block_hash)

    def _committed(self, row: ChallengeRow, challenge_id: int, block: int, block_hash: str) -> None:
        leak = self.chain.leak(challenge_id)
        self.state.update_challenge(
            row.id,
            state="committed",
            onchain_id=challenge_id,
            commit_block=block,
            commit_block_hash=block_hash,
            deadline=leak.deadline,
        )
        log.info(
            "leak challenge %d committed in block %d (reveal by %d)",
            challenge_id,
            block,
            leak.deadline,
        )

    def _reveal(self, row: ChallengeRow) -> None:
        assert row.onchain_id is not None and row.commit_block is not None
        leak = self.chain.leak(row.onchain_id)
        mine = (
            leak.challenger.lower() == self.chain.address.lower()
            and leak.commitment == self._commitment(row)
        )
        canonical = self.chain.block_hash(row.commit_block) == row.commit_block_hash
        if not mine or not canonical:
            # the commit was reorganised away: commit again (search first, in case it re-landed)
            log.warning("commit of challenge %d is no longer on chain; committing again", row.id)
            self.chain.resync_nonce()  # our transactions in the lost blocks are gone too
            self.state.update_challenge(
                row.id,
                state="committing",
                onchain_id=None,
                commit_block=None,
                commit_block_hash=None,
            )
            return
        if leak.state != LeakState.COMMITTED:
            self._adopt(row, leak.state, leak.deadline)
            return
        head, now = self.chain.head()
        if now > leak.deadline:
            self.chain.finalize_leak(row.onchain_id)  # Expired: half the bond is lost
            self._adopt(row, LeakState.EXPIRED, leak.deadline)
            return
        if head - row.commit_block < max(self.settings.reveal_confirmations, 1):
            return  # never reveal before the commit is final
        key = self.state.key(row.copy_id, int(row.key_index or 0))
        assert key is not None and row.evidence_cid is not None
        if self.chain.key_revealed(row.copy_id, key.index):
            log.error(
                "key %d/%d was burned by someone else; challenge %d will expire",
                row.copy_id,
                key.index,
                row.onchain_id,
            )
            self.state.update_challenge(row.id, last_error="key burned before reveal")
            return
        reveal = (
            row.copy_id,
            key.index,
            key.key.encode("utf-8"),
            key.response.encode("utf-8"),
            key.salt,
            key.proof,
            row.evidence_cid,
        )
        tx_hash = self.chain.reveal_leak(row.onchain_id, reveal)
        _crash_point("reveal-sent")
        self.state.advance_keys(row.copy_id, [key.index], "revealed")
        leak = self.chain.leak(row.onchain_id)
        self.state.update_challenge(
            row.id, state="revealed", deadline=leak.deadline, data={**row.data, "revealTx": tx_hash}
        )
        log.info("leak challenge %d revealed; liveness ends %d", row.onchain_id, leak.deadline)

    def _follow(self, row: ChallengeRow) -> None:
        assert row.onchain_id is not None
        leak = self.chain.leak(row.onchain_id)
        if leak.state in TERMINAL:
            self._adopt(row, leak.state, leak.deadline)
            return
        if leak.state == LeakState.DISPUTED and row.state != "disputed":
            self.state.update_challenge(row.id, state="disputed", deadline=leak.deadline)
            log.warning(
                "leak challenge %d disputed by the host; arbiter rules by %d",
                row.onchain_id,
                leak.deadline,
            )
            self._answer_dispute(row)
            return
        if self.chain.now() > leak.deadline:
            # undisputed after liveness: slash; disputed and never ruled: bonds back
            self.chain.finalize_leak(row.onchain_id)
            leak = self.chain.leak(row.onchain_id)
            self._adopt(row, leak.state, leak.deadline)

    def _adopt(self, row: ChallengeRow, state: LeakState, deadline: int) -> None:
        if state in TERMINAL:
            assert row.onchain_id is not None
            slash = self.chain.slash_of(row.onchain_id) if state == LeakState.UPHELD else None
            self.state.update_challenge(
                row.id,
                state=TERMINAL[state],
                deadline=deadline,
                slashed=slash[0] if slash else 0,
                reward=slash[1] if slash else 0,
            )
            log.info("leak challenge %d ended %s", row.onchain_id, TERMINAL[state])
            self._claim()
        elif state == LeakState.REVEALED:
            self.state.update_challenge(row.id, state="revealed", deadline=deadline)
            if row.key_index is not None:
                self.state.advance_keys(row.copy_id, [row.key_index], "revealed")
        elif state == LeakState.DISPUTED:
            self.state.update_challenge(row.id, state="disputed", deadline=deadline)

    def _answer_dispute(self, row: ChallengeRow) -> None:
        """Probe the endpoint again with fresh keys and publish the result for the arbiter."""
        endpoint = row.data.get("endpoint")
        if not endpoint:
            return
        try:  # a confirmation on fresh keys, published for the arbiter; not a new challenge
            found = self.probe_endpoint(str(endpoint), only_copy=row.copy_id, challenge=False)
        except (ProbeError, ChainError, KeyServiceError) as error:
            log.warning("could not re-probe %s for the dispute: %s", endpoint, error)
            return
        ours = [f for f in found if f["copyId"] == row.copy_id]
        data = {
            **row.data,
            "disputeProbe": ours[0] if ours else {"copyId": row.copy_id, "accused": False},
        }
        self.state.update_challenge(row.id, data=data)

    def _claim(self) -> None:
        if not self.settings.auto_claim:
            return
        try:
            self.chain.claim_all()
        except ChainError as error:
            log.warning("claim failed (will retry with the next payout): %s", error)

    # ================================================================== one pass / schedule

    def step(self) -> StepReport:
        """Every job once, in dependency order (what a scheduler tick would do)."""
        report = StepReport()
        jobs: list[tuple[str, Callable[[], Any]]] = [
            ("sync", lambda: setattr(report, "synced", self.sync())),
            ("keys", lambda: setattr(report, "keys_added", self.refresh_keys())),
            ("hosts", lambda: self.probe_hosts(report)),
            ("audit", lambda: self.audit(report)),
            ("challenges", lambda: self.advance(report)),  # repairs first, then new work
            ("watch", lambda: self.probe_watchlist(report)),
        ]
        for name, job in jobs:
            try:
                job()
            except NotRegistered:
                raise
            except Exception as error:  # one failing job must not stop the others
                log.exception("prover job %s failed", name)
                report.errors.append(f"{name}: {type(error).__name__}: {error}")
        return report

    def start(self) -> Any:
        """Run the jobs on an APScheduler BackgroundScheduler; returns it (call shutdown())."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        s = self.settings
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(3)},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 60},
            daemon=True,
        )
        scheduler.add_job(self._guard(self.sync), "interval", seconds=s.sync_interval_s, id="sync")
        scheduler.add_job(
            self._guard(self.refresh_keys),
            "interval",
            seconds=max(s.sync_interval_s, 60.0),
            id="keys",
        )
        scheduler.add_job(
            self._guard(lambda: (self.probe_hosts(), self.audit())),
            "interval",
            seconds=s.host_probe_interval_s,
            id="hosts",
        )
        scheduler.add_job(
            self._guard(self.probe_watchlist), "interval", seconds=s.watch_interval_s, id="watch"
        )
        scheduler.add_job(
            self._guard(self.advance), "interval", seconds=s.challenge_interval_s, id="challenges"
        )
        scheduler.start()
        for job in scheduler.get_jobs():  # catch up at once after a (re)start
            job.modify(next_run_time=_utcnow())
        return scheduler

    def _guard(self, job: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            try:
                job()
            except Exception:
                log.exception("prover job failed; it runs again on schedule")

        return run


def _same_endpoint(registered: str, base: str) -> bool:
    try:
        return base_url(registered) == base
    except ProbeError:
        return False


def _utcnow() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
