"""The prover's pure decisions: receipts vs reports, equivocation, missed epochs, leak verdicts,
and the arbiter's re-check of evidence (real commitments, real signatures, no chain)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.arbiter.service import check_evidence
from agents.chain.keystore import dev_account
from agents.chain.receipts import Receipt, sign_receipt, text_hash
from agents.fingerprint.commitment import commit
from agents.fingerprint.detection import binomial_tail
from agents.fingerprint.generation import Fingerprint
from agents.prover.audit import (
    audit_receipts,
    decide_leaks,
    equivocations,
    keys_needed,
    missed_epochs,
)
from agents.prover.chain import leak_commitment
from agents.prover.evidence import leak_evidence
from agents.prover.probing import (
    Exchange,
    ProbeItem,
    base_url,
    check_receipt,
    key_max_tokens,
    schedule,
)
from agents.prover.state import KeyMaterial, StoredReceipt

VC = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def _stored(i: int, copy_id: int, epoch: int, seq: int, prompt: str = "p") -> StoredReceipt:
    return StoredReceipt(
        i,
        copy_id,
        epoch,
        seq,
        text_hash(prompt),
        text_hash("r"),
        b"s" * 65,
        "http://h",
        epoch,
        "pending",
    )


def test_receipts_above_the_reported_bound_are_under_reports() -> None:
    receipts = [
        _stored(1, 1, 3, 4),
        _stored(2, 1, 3, 6),
        _stored(3, 1, 3, 7),
        _stored(4, 1, 4, 9),
        _stored(5, 1, 5, 12),
        _stored(6, 2, 3, 1),
    ]
    bounds = {(1, 3): (True, 5), (1, 4): (False, 0), (2, 3): (True, 1)}
    result = audit_receipts(receipts, closed_through=4, bound=lambda c, e: bounds[(c, e)])
    assert sorted(result.ok) == [1, 6]
    assert sorted(result.waiting) == [4, 5]  # epoch 4 unreported, epoch 5 still open
    [finding] = result.under_reports
    assert (finding.copy_id, finding.epoch, finding.bound, finding.receipt.seq) == (1, 3, 5, 7)


@given(
    st.lists(st.tuples(st.integers(1, 3), st.integers(1, 6), st.sampled_from("ab")), max_size=30)
)
def test_equivocation_needs_same_copy_same_seq_different_content(
    items: list[tuple[int, int, str]],
) -> None:
    receipts = [_stored(i, c, 0, s, p) for i, (c, s, p) in enumerate(items)]
    pairs = equivocations(receipts)
    for a, b in pairs:
        assert (a.copy_id, a.seq) == (b.copy_id, b.seq) and a.prompt_hash != b.prompt_hash
    expected = {
        (c, s) for c, s, _ in items if len({p for c2, s2, p in items if (c2, s2) == (c, s)}) > 1
    }
    assert {(a.copy_id, a.seq) for a, _ in pairs} == expected


def test_missed_epochs_wait_for_the_grace_and_stop_at_exit() -> None:
    def end(e: int) -> int:
        return (e + 1) * 60

    assert (
        missed_epochs(next_epoch=2, end_epoch=2**32 - 1, now=3 * 60 + 29, grace=30, epoch_end=end)
        == []
    )
    assert missed_epochs(
        next_epoch=2, end_epoch=2**32 - 1, now=3 * 60 + 30, grace=30, epoch_end=end
    ) == [2]
    assert missed_epochs(next_epoch=2, end_epoch=3, now=10_000, grace=30, epoch_end=end) == [2, 3]
    assert len(missed_epochs(next_epoch=0, end_epoch=99, now=10**6, grace=0, epoch_end=end)) == 4


def test_leak_decision_splits_the_false_positive_bound_over_copies() -> None:
    assert keys_needed(1e-9, 0.1, 1) == 9
    assert keys_needed(1e-9, 0.1, 10) == 10
    # 10/10 matches: p = 1e-10 -> accused alone (1e-9), and when tested with 10 copies (1e-10)
    alone = decide_leaks({7: [True] * 10}, copies_tested=1, fp_bound=1e-9, chance_bound=0.1)
    assert alone[0].accused and alone[0].verdict.false_positive_probability == pytest.approx(1e-10)
    crowd = decide_leaks({7: [True] * 10}, copies_tested=20, fp_bound=1e-9, chance_bound=0.1)
    assert not crowd[0].accused  # 1e-10 > 1e-9 / 20
    assert crowd[0].family_false_positive == pytest.approx(2e-9)
    weak = decide_leaks(
        {7: [True] * 10 + [False] * 2}, copies_tested=1, fp_bound=1e-9, chance_bound=0.1
    )
    assert weak[0].verdict.false_positive_probability == pytest.approx(binomial_tail(12, 10, 0.1))
    assert not weak[0].accused


def test_base_url_and_probe_mix() -> None:
    for url in ("http://h:1", "http://h:1/", "http://h:1/v1", "http://h:1/v1/completions"):
        assert base_url(url) == "http://h:1"
    keys = [KeyMaterial(1, i, f"key {i}", "one two", b"\0" * 32, []) for i in range(3)]
    items = schedule(keys, 5, random.Random(1))
    assert len(items) == 8 and sum(i.key is not None for i in items) == 3
    assert key_max_tokens(keys, 4) == 8


def test_receipt_check_uses_the_deployment_domain_and_the_copy_host() -> None:
    host = dev_account(6)
    receipt = Receipt.for_call(3, 10, 5, "hello", "world")
    raw = {
        "copyId": 3,
        "epoch": 10,
        "seq": 5,
        "promptHash": "0x" + receipt.prompt_hash.hex(),
        "responseHash": "0x" + receipt.response_hash.hex(),
        "signature": "0x" + sign_receipt(host, receipt, 31337, VC).hex(),
    }
    ok = check_receipt(
        raw,
        prompt="hello",
        text="world",
        copy_id=3,
        host=host.address,
        chain_id=31337,
        verifying_contract=VC,
    )
    assert ok.valid and ok.problems == ()
    lied = check_receipt(
        raw,
        prompt="hello",
        text="other",
        copy_id=3,
        host=host.address,
        chain_id=31337,
        verifying_contract=VC,
    )
    assert lied.valid and lied.problems[0].startswith("response-hash")
    other_domain = check_receipt(
        raw,
        prompt="hello",
        text="world",
        copy_id=3,
        host=host.address,
        chain_id=1,
        verifying_contract=VC,
    )
    assert not other_domain.valid


def _evidence(copy_id: int, matched: int, total: int) -> tuple[dict[str, object], bytes]:
    fps = [Fingerprint(f"key number {i}", f"resp{i}") for i in range(total)]
    seed = b"\x11" * 32
    commitment = commit(copy_id, fps, seed)
    from agents.fingerprint.commitment import fingerprint_salt

    exchanges = []
    for i, fp in enumerate(fps):
        key = KeyMaterial(
            copy_id, i, fp.key, fp.response, fingerprint_salt(seed, i), commitment.proof(i)
        )
        text = fp.response + " tail" if i < matched else "something else"
        exchanges.append(
            Exchange("http://rogue", fp.key, {"prompt": fp.key}, 0.0, 1.0, 200, text, key=key)
        )
    decision = decide_leaks(
        {copy_id: [bool(e.matched) for e in exchanges]},
        copies_tested=2,
        fp_bound=1e-9,
        chance_bound=0.1,
    )[0]
    doc = leak_evidence(
        chain_id=31337,
        challenge_manager=VC,
        access_manager=VC,
        prover=VC,
        endpoint="http://rogue",
        model_name="m",
        copy_id=copy_id,
        model_id=1,
        host=VC,
        fp_root="0x" + commitment.root.hex(),
        decision=decision,
        reveal_index=0,
        exchanges=exchanges,
        cover=[],
    )
    return doc, commitment.root


def test_arbiter_recomputes_evidence_instead_of_trusting_it() -> None:
    doc, root = _evidence(4, matched=12, total=12)
    check = check_evidence(doc, copy_id=4, fp_root=root)
    assert check.readable and (check.queried, check.matched, check.proofs_ok) == (12, 12, 12)
    assert check.false_positive_probability == pytest.approx(1e-12)
    # the prover's own "matched" flags are ignored: only the endpoint's text counts
    for entry in doc["fingerprintQueries"]:  # type: ignore[attr-defined]
        entry["text"] = "nope"
    assert check_evidence(doc, copy_id=4, fp_root=root).matched == 0
    # a key that is not in the copy's tree does not count
    assert check_evidence(doc, copy_id=4, fp_root=b"\x01" * 32).queried == 0
    assert not check_evidence({"kind": "x"}, copy_id=4, fp_root=root).readable


def test_leak_commitment_binds_the_challenger() -> None:
    a = leak_commitment(dev_account(4).address, 1, 2, b"\x03" * 32, "Qm")
    b = leak_commitment(dev_account(8).address, 1, 2, b"\x03" * 32, "Qm")
    assert a != b and len(a) == 32
    assert ProbeItem("x").key is None
