"""The accused side: challenges against this host's copies, and disputing a leak accusation.

:class:`HostChallenges` reads ChallengeManager's events for every copy the host account
licensed: provable slashes (under-report, equivocation, missed report — final, nothing to
answer) and leak challenges (revealed on chain, disputable until ``liveness`` ends). For a
revealed leak it fetches the prover's evidence and points out what a host can check itself,
e.g. that the "leaking" endpoint is in fact the copy's own registered endpoint.

``oml host dispute CHALLENGE_ID --evidence FILE --statement TEXT`` uploads the host's own
evidence bundle to IPFS (printed, for the arbiter), approves the counter-bond and calls
``disputeLeak``. ``oml host challenges [--follow]`` lists them; ``poll`` (used by
``--follow`` and schedulable next to the reporter) alerts once per new challenge.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import click

from agents.host.commands import group, host_settings
from agents.host.errors import HostError

log = logging.getLogger(__name__)

KINDS = ("under-report", "equivocation", "missed-report", "leak")
LEAK_STATES = (
    "none",
    "committed",
    "revealed",
    "disputed",
    "upheld",
    "rejected",
    "timed-out",
    "expired",
)


class ChallengeError(HostError):
    """A challenge cannot be disputed as asked."""


class HostChallenges:
    def __init__(self, chain: Any, state_dir: Path) -> None:
        """``chain`` is an :class:`agents.host.chain.HostChain` (w3, deployment, sender)."""
        self.chain = chain
        self.w3 = chain.w3
        self.deployment = chain.deployment
        self.address = str(chain.address)
        self.manager = chain.deployment.contract(chain.w3, "ChallengeManager")
        self.access = chain.access
        state_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(state_dir / "challenges.sqlite3"), isolation_level=None)
        self._db.execute("CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY, at REAL NOT NULL)")

    def close(self) -> None:
        self._db.close()

    # ----------------------------------------------------------------- reading

    def _logs(self, contract: Any, event: str, **filters: Any) -> list[Any]:
        return list(
            getattr(contract.events, event)().get_logs(
                from_block=self.deployment.deploy_block, argument_filters=filters or None
            )
        )

    def my_copies(self) -> dict[int, str]:
        """copy id -> registered endpoint, for every copy this host account requested."""
        return {
            int(e["args"]["copyId"]): str(e["args"]["endpoint"])
            for e in self._logs(self.access, "AccessRequested", host=self.address)
        }

    def leak(self, challenge_id: int) -> dict[str, Any]:
        raw = self.manager.functions.getLeak(challenge_id).call()
        names = (
            "challenger",
            "state",
            "commitBlock",
            "deadline",
            "host",
            "bond",
            "counterBond",
            "copyId",
            "index",
            "commitment",
        )
        data = dict(zip(names, raw, strict=True))
        data["state"] = LEAK_STATES[int(data["state"])]
        data.pop("commitment")
        return data

    def challenges(self, *, with_evidence: bool = False) -> list[dict[str, Any]]:
        """Every challenge raised against this host's copies, oldest first."""
        copies = self.my_copies()
        out: list[dict[str, Any]] = []
        for copy_id in copies:
            for event in self._logs(self.manager, "ProvableChallenge", copyId=copy_id):
                args = event["args"]
                out.append(
                    {
                        "challengeId": int(args["challengeId"]),
                        "copyId": copy_id,
                        "kind": KINDS[int(args["kind"])],
                        "state": "slashed",
                        "challenger": str(args["challenger"]),
                        "slashed": int(args["slashed"]),
                        "block": int(event["blockNumber"]),
                    }
                )
            for event in self._logs(self.manager, "LeakRevealed", copyId=copy_id):
                args = event["args"]
                challenge_id = int(args["challengeId"])
                leak = self.leak(challenge_id)
                entry = {
                    "challengeId": challenge_id,
                    "copyId": copy_id,
                    "kind": "leak",
                    "state": leak["state"],
                    "challenger": leak["challenger"],
                    "deadline": leak["deadline"],
                    "index": int(args["index"]),
                    "evidenceCID": str(args["evidenceCID"]),
                    "block": int(event["blockNumber"]),
                }
                if with_evidence:
                    entry["notes"] = self.assess(entry, copies.get(copy_id, ""))
                out.append(entry)
        return sorted(out, key=lambda c: (c["block"], c["challengeId"]))

    def assess(self, challenge: dict[str, Any], registered: str) -> list[str]:
        """What the host can check in the prover's evidence without an arbiter."""
        notes: list[str] = []
        try:
            document = json.loads(_fetch(challenge["evidenceCID"]))
        except Exception as error:
            return [
                f"evidence {challenge['evidenceCID']} could not be fetched ({error}): "
                "evidence the arbiter cannot read is grounds to dispute"
            ]
        endpoint = str(document.get("endpoint", ""))
        if endpoint and _same_endpoint(endpoint, registered):
            notes.append(
                f"the evidence was collected from this copy's own registered endpoint "
                f"{registered}: serving your licensed copy is not a leak — dispute"
            )
        decision = document.get("decision", {})
        notes.append(
            f"evidence: {decision.get('matched')}/{decision.get('queried')} keys "
            f"answered at {endpoint}, stated false-positive p="
            f"{decision.get('falsePositiveProbability')}"
        )
        return notes

    # ----------------------------------------------------------------- alerts

    def poll(self) -> list[dict[str, Any]]:
        """Challenges (or state changes) not seen before; logged as warnings once each."""
        fresh = []
        for c in self.challenges(with_evidence=False):
            key = f"{c['challengeId']}:{c['state']}"
            if self._db.execute("SELECT 1 FROM seen WHERE key = ?", (key,)).fetchone():
                continue
            self._db.execute("INSERT INTO seen VALUES (?, ?)", (key, time.time()))
            fresh.append(c)
            if c["kind"] == "leak" and c["state"] == "revealed":
                log.warning(
                    "leak challenge %d against copy %d: dispute before %d "
                    "(oml host dispute %d --evidence ...)",
                    c["challengeId"],
                    c["copyId"],
                    c["deadline"],
                    c["challengeId"],
                )
            else:
                log.warning(
                    "challenge %d against copy %d: %s %s",
                    c["challengeId"],
                    c["copyId"],
                    c["kind"],
                    c["state"],
                )
        return fresh

    # ----------------------------------------------------------------- disputing

    def dispute(self, challenge_id: int, files: list[Path], statement: str) -> dict[str, Any]:
        """Upload the host's evidence, post the counter-bond, dispute the leak."""
        leak = self.leak(challenge_id)
        if leak["state"] != "revealed":
            raise ChallengeError(
                f"challenge {challenge_id} is {leak['state']}; only a revealed "
                "leak challenge can be disputed"
            )
        if str(leak["host"]).lower() != self.address.lower():
            raise ChallengeError(
                f"challenge {challenge_id} accuses {leak['host']}, not this host key {self.address}"
            )
        now = int(self.w3.eth.get_block("latest")["timestamp"])
        if now > int(leak["deadline"]):
            raise ChallengeError(
                f"liveness of challenge {challenge_id} ended at "
                f"{leak['deadline']}; it can no longer be disputed"
            )
        bundle = self._evidence_bundle(challenge_id, int(leak["copyId"]), files, statement)
        counter_bond = int(self.manager.functions.params().call()[2])
        token = self.chain.token
        if int(token.functions.allowance(self.address, self.manager.address).call()) < counter_bond:
            self.chain.sender.send(
                token.functions.approve(self.manager.address, counter_bond),
                label="approve counter-bond",
            )
        tx = self.chain.sender.send(
            self.manager.functions.disputeLeak(challenge_id), label=f"disputeLeak {challenge_id}"
        )
        after = self.leak(challenge_id)
        return {
            "challengeId": challenge_id,
            "state": after["state"],
            "ruleBy": after["deadline"],
            "counterBond": counter_bond,
            "evidenceCID": bundle,
            "tx": tx["transactionHash"].to_0x_hex(),
        }

    def _evidence_bundle(
        self, challenge_id: int, copy_id: int, files: list[Path], statement: str
    ) -> str | None:
        if not files and not statement:
            return None
        from agents.storage.client import IpfsClient

        with IpfsClient() as ipfs:
            attached = {path.name: ipfs.add_file(path) for path in files}
            document = {
                "kind": "oml-hub/dispute-evidence",
                "version": 1,
                "challengeId": challenge_id,
                "copyId": copy_id,
                "host": self.address,
                "chainId": self.deployment.chain_id,
                "challengeManager": str(self.manager.address),
                "statement": statement,
                "files": attached,
            }
            return ipfs.add_bytes(json.dumps(document, indent=1, sort_keys=True).encode())


def _fetch(cid: str) -> bytes:
    from agents.storage.client import IpfsClient

    with IpfsClient() as ipfs:
        return ipfs.cat(cid, timeout_s=30)


def _same_endpoint(a: str, b: str) -> bool:
    def norm(url: str) -> str:
        url = url.strip().rstrip("/")
        for suffix in ("/v1/completions", "/completions", "/v1"):
            url = url.removesuffix(suffix)
        return url.lower()

    return bool(a) and norm(a) == norm(b)


def _open(ctx: click.Context) -> HostChallenges:
    from agents.host.chain import HostChain

    settings = host_settings(ctx)
    try:
        return HostChallenges(HostChain.connect(settings), settings.state_dir)
    except HostError as error:
        raise click.ClickException(str(error)) from error


@group.command()
@click.argument("challenge_id", type=int)
@click.option(
    "--evidence",
    "files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file for the arbiter (logs, configs, ...); repeatable. Uploaded to IPFS.",
)
@click.option("--statement", default="", help="The host's account of events, for the arbiter.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def dispute(
    ctx: click.Context, challenge_id: int, files: tuple[Path, ...], statement: str, as_json: bool
) -> None:
    """Dispute a revealed leak challenge within its liveness window (posts the counter-bond).

    The arbiter then rules: upheld, the copy is slashed and the counter-bond goes to the
    prover; rejected, the counter-bond comes back plus half the prover's bond.
    """
    challenges = _open(ctx)
    try:
        result = challenges.dispute(challenge_id, list(files), statement)
    except (HostError, RuntimeError) as error:
        raise click.ClickException(str(error)) from error
    finally:
        challenges.close()
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"challenge {challenge_id} disputed; the arbiter rules by {result['ruleBy']}")
    if result["evidenceCID"]:
        click.echo(f"your evidence: {result['evidenceCID']} (give this CID to the arbiter)")


@group.command("challenges")
@click.option("--follow", is_flag=True, help="Keep watching; print each new challenge.")
@click.option("--interval", default=10.0, show_default=True, help="Seconds between polls.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_challenges(ctx: click.Context, follow: bool, interval: float, as_json: bool) -> None:
    """Challenges against this host's copies, with what the evidence shows."""
    challenges = _open(ctx)
    try:
        if not follow:
            rows = challenges.challenges(with_evidence=True)
            if as_json:
                click.echo(json.dumps(rows, indent=2))
                return
            for c in rows:
                click.echo(_line(c))
                for note in c.get("notes", []):
                    click.echo(f"    {note}")
            if not rows:
                click.echo("no challenges against this host's copies")
            return
        while True:
            for c in challenges.poll():
                click.echo(json.dumps(c) if as_json else _line(c))
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        challenges.close()


def _line(c: dict[str, Any]) -> str:
    extra = (
        f"deadline {c['deadline']} evidence {c['evidenceCID']}"
        if c["kind"] == "leak"
        else f"slashed {c['slashed']}"
    )
    return (
        f"challenge {c['challengeId']:>4} copy {c['copyId']:<4} {c['kind']:<13} "
        f"{c['state']:<10} by {c['challenger']} {extra}"
    )
