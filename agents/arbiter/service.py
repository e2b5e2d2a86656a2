"""The arbiter's desk: disputed leak challenges, their evidence re-checked, and the ruling.

For each case the arbiter sees what was revealed on chain (copy, key index, key, response,
evidence CID) and the prover's evidence document from IPFS, *re-verified* rather than taken
at its word: every fingerprint query in it must be a leaf of the copy's on-chain ``fpRoot``
(salt + Merkle proof), the match is recomputed from the endpoint's text (not the prover's
``matched`` flag), and the false-positive probability is recomputed with the binomial rule of
:mod:`agents.fingerprint.detection`. The recommendation is only advice: the ruling is the
arbiter's (``rule(challengeId, leaked)``), within the arbitration window.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agents.chain.protocol import Protocol
from agents.fingerprint.commitment import fingerprint_leaf, verify_proof
from agents.fingerprint.detection import DEFAULT_CHANCE_BOUND, make_verdict, matches

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
EVIDENCE_KIND = "oml-hub/leak-evidence"


class ArbiterError(RuntimeError):
    """A case cannot be read or ruled as asked."""


@dataclass(frozen=True)
class EvidenceCheck:
    readable: bool
    queried: int = 0
    matched: int = 0
    proofs_ok: int = 0
    false_positive_probability: float = 1.0
    copies_tested: int = 1
    claimed_threshold: float | None = None
    endpoint: str | None = None
    problems: tuple[str, ...] = ()

    @property
    def family_false_positive(self) -> float:
        return min(1.0, self.false_positive_probability * self.copies_tested)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "problems": list(self.problems),
            "familyFalsePositive": self.family_false_positive,
        }


def check_evidence(document: Any, *, copy_id: int, fp_root: bytes) -> EvidenceCheck:
    """Recompute what a leak evidence document proves about ``copy_id``."""
    if not isinstance(document, dict) or document.get("kind") != EVIDENCE_KIND:
        return EvidenceCheck(False, problems=("not an OML Hub leak evidence document",))
    problems: list[str] = []
    if int(document.get("copy", {}).get("copyId", -1)) != copy_id:
        problems.append("evidence is about another copy")
    decision = document.get("decision", {})
    chance = float(decision.get("chanceBound", DEFAULT_CHANCE_BOUND))
    if chance < DEFAULT_CHANCE_BOUND:
        problems.append(f"chance bound {chance} is below the protocol default")
        chance = DEFAULT_CHANCE_BOUND
    queried = matched = proofs_ok = 0
    seen: set[int] = set()
    for entry in document.get("fingerprintQueries", []):
        fp = entry.get("fingerprint") or {}
        try:
            index = int(fp["index"])
            leaf = fingerprint_leaf(
                copy_id,
                index,
                str(fp["key"]),
                str(fp["response"]),
                bytes.fromhex(str(fp["salt"]).removeprefix("0x")),
            )
            proof = [bytes.fromhex(str(n).removeprefix("0x")) for n in fp["proof"]]
        except (KeyError, ValueError, TypeError):
            problems.append("a fingerprint query is malformed")
            continue
        if index in seen:
            problems.append(f"key {index} is counted twice")
            continue
        seen.add(index)
        if not verify_proof(proof, fp_root, leaf):
            problems.append(f"key {index} does not verify against the copy's fpRoot")
            continue
        proofs_ok += 1
        queried += 1
        text = entry.get("text")
        matched += isinstance(text, str) and matches(text, str(fp["response"]))
    verdict = make_verdict(queried, matched, chance)
    threshold = decision.get("threshold")
    return EvidenceCheck(
        readable=True,
        queried=queried,
        matched=matched,
        proofs_ok=proofs_ok,
        false_positive_probability=verdict.false_positive_probability,
        copies_tested=max(1, int(decision.get("copiesTested", 1))),
        claimed_threshold=None if threshold is None else float(threshold),
        endpoint=document.get("endpoint"),
        problems=tuple(problems),
    )


class Arbiter:
    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        self.manager = protocol.contract("ChallengeManager")
        self.access = protocol.contract("AccessManager")

    def _logs(self, event: str, **filters: Any) -> list[Any]:
        return list(
            getattr(self.manager.events, event)().get_logs(
                from_block=self.protocol.deployment.deploy_block, argument_filters=filters or None
            )
        )

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
        data["commitment"] = "0x" + bytes(data["commitment"]).hex()
        return data

    def disputed(self) -> list[dict[str, Any]]:
        """Disputes still waiting for a ruling, oldest first."""
        out = []
        for event in self._logs("LeakDisputed"):
            challenge_id = int(event["args"]["challengeId"])
            leak = self.leak(challenge_id)
            if leak["state"] == "disputed":
                out.append(
                    {
                        "challengeId": challenge_id,
                        "copyId": leak["copyId"],
                        "host": leak["host"],
                        "challenger": leak["challenger"],
                        "ruleBy": leak["deadline"],
                    }
                )
        return out

    def case(self, challenge_id: int, *, fetch: Any = None) -> dict[str, Any]:
        """Everything about one challenge, with the evidence re-checked."""
        leak = self.leak(challenge_id)
        if leak["state"] in ("none", "committed", "expired"):
            raise ArbiterError(f"challenge {challenge_id} is {leak['state']}: nothing revealed")
        [revealed] = self._logs("LeakRevealed", challengeId=challenge_id)[-1:] or [None]
        if revealed is None:
            raise ArbiterError(f"no LeakRevealed event for challenge {challenge_id}")
        args = revealed["args"]
        copy_id = int(args["copyId"])
        copy = self.protocol.copy(copy_id)
        cid = str(args["evidenceCID"])
        out: dict[str, Any] = {
            "challengeId": challenge_id,
            **{k: v for k, v in leak.items() if k != "copyId"},
            "copyId": copy_id,
            "index": int(args["index"]),
            "key": bytes(args["key"]).decode("utf-8", "replace"),
            "response": bytes(args["response"]).decode("utf-8", "replace"),
            "evidenceCID": cid,
            "fpRoot": "0x" + copy.fp_root.hex(),
        }
        try:
            raw = fetch(cid) if fetch is not None else _fetch(cid)
            document = json.loads(raw)
        except Exception as error:
            out["evidence"] = {"readable": False, "problems": [f"cannot fetch {cid}: {error}"]}
            out["recommendation"] = "reject (evidence unavailable)"
            return out
        check = check_evidence(document, copy_id=copy_id, fp_root=copy.fp_root)
        revealed_in = any(
            int((e.get("fingerprint") or {}).get("index", -1)) == out["index"]
            for e in document.get("fingerprintQueries", [])
        )
        problems = list(check.problems)
        if not revealed_in:
            problems.append("the revealed key is not among the evidence's queries")
        out["evidence"] = {**check.as_dict(), "problems": problems}
        strong = check.readable and check.family_false_positive <= 1e-6 and not problems
        out["recommendation"] = "uphold" if strong else "reject (evidence too weak or flawed)"
        return out

    def rule(self, challenge_id: int, leaked: bool) -> str:
        leak = self.leak(challenge_id)
        if leak["state"] != "disputed":
            raise ArbiterError(f"challenge {challenge_id} is {leak['state']}, not disputed")
        tx = self.protocol.sender.send(
            self.manager.functions.rule(challenge_id, leaked), label=f"rule {challenge_id}"
        )
        return str(tx["transactionHash"].to_0x_hex())


def _fetch(cid: str) -> bytes:
    from agents.storage.client import IpfsClient

    with IpfsClient() as ipfs:
        return ipfs.cat(cid, timeout_s=30)
