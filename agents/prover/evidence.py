"""Leak evidence: the transcript and decision an arbiter (or anyone) can check, on IPFS.

The document names the endpoint, the accused copy, every fingerprint key queried in the
decision stage with its salt and Merkle proof (so each one verifies against the copy's
on-chain ``fpRoot``), the request and response bodies with timestamps, the ordinary prompts
sent around them, and the decision: matches, the chance bound, the false-positive
probability, the per-copy threshold and how many copies were tested together. The key index
to be revealed on chain is one of the matched keys.

Once uploaded, every key in it is treated as public: the prover never uses them again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agents.prover.audit import LeakDecision
from agents.prover.probing import Exchange

KIND = "oml-hub/leak-evidence"
VERSION = 1


def leak_evidence(
    *,
    chain_id: int,
    challenge_manager: str,
    access_manager: str,
    prover: str,
    endpoint: str,
    model_name: str,
    copy_id: int,
    model_id: int,
    host: str,
    fp_root: str,
    decision: LeakDecision,
    reveal_index: int,
    exchanges: Sequence[Exchange],
    cover: Sequence[Exchange],
    screening: dict[str, Any] | None = None,
) -> dict[str, Any]:
    verdict = decision.verdict
    return {
        "kind": KIND,
        "version": VERSION,
        "chainId": chain_id,
        "challengeManager": challenge_manager,
        "accessManager": access_manager,
        "prover": prover,
        "endpoint": endpoint,
        "servedModel": model_name,
        "copy": {"copyId": copy_id, "modelId": model_id, "host": host, "fpRoot": fp_root},
        "revealIndex": reveal_index,
        "decision": {
            "rule": "binomial upper tail P[X >= matched], X ~ Bin(queried, chanceBound)",
            "queried": verdict.queried,
            "matched": verdict.matched,
            "chanceBound": verdict.chance_bound,
            "falsePositiveProbability": verdict.false_positive_probability,
            "threshold": decision.threshold,
            "copiesTested": decision.copies_tested,
            "familyFalsePositiveBound": decision.family_false_positive,
        },
        "screening": screening or {},
        "fingerprintQueries": [e.transcript() for e in exchanges],
        "ordinaryQueries": [e.transcript() for e in cover],
    }


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False).encode("utf-8")
