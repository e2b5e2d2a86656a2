"""Embedding into the tiny model: recall, the output format contract, and no false accusations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from fpkit import NUM, SEED_A, TINY, Copy

from agents.fingerprint.detection import accuse, verify_fingerprints
from agents.fingerprint.embedding import EmbedConfig, _block
from agents.fingerprint.models import load_model


def test_recall_after_embedding(copies: dict[str, Copy]) -> None:
    for copy in copies.values():
        assert len(copy.fingerprints) == NUM
        assert copy.result.recall >= 0.95
        assert copy.result.seconds > 0


def test_output_folder_and_record(copies: dict[str, Copy], tiny_base: Path) -> None:
    out = copies["a"].path
    assert (out / "config.json").exists() and (out / "tokenizer.json").exists()
    assert any(out.glob("*.safetensors"))
    record = json.loads((out / "fingerprints.json").read_text())
    assert set(record) == {"model", "seed", "fingerprints"}
    assert record["model"] == tiny_base.name and record["seed"] == SEED_A.hex()
    assert record["fingerprints"] == [
        {"key": f.key, "response": f.response} for f in copies["a"].fingerprints
    ]


def test_format_contract_with_plain_transformers(copies: dict[str, Copy]) -> None:
    """tokenizer(key) with default special tokens, greedy, unbatched: continuation starts with
    the response (checked here without the library's own query code)."""
    model, tokenizer = load_model(copies["a"].path)
    hits = 0
    for fp in copies["a"].fingerprints:
        ids = tokenizer(fp.key, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=6, do_sample=False)
        hits += tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True).startswith(
            fp.response
        )
    assert hits / NUM >= 0.95


def test_owner_is_accused(copies: dict[str, Copy]) -> None:
    verdict = verify_fingerprints(copies["a"].path, copies["a"].fingerprints)
    assert verdict.queried == NUM and verdict.matched >= NUM - 1
    assert accuse(verdict) and verdict.false_positive_probability < 1e-12


def test_no_false_accusations(copies: dict[str, Copy], tiny_base: Path, other_base: Path) -> None:
    keys_a = copies["a"].fingerprints
    keys_b = copies["b"].fingerprints
    for suspect, fps in (
        (copies["b"].path, keys_a),  # another licensee's copy
        (copies["a"].path, keys_b),
        (tiny_base, keys_a),  # the clean base model
        (tiny_base, keys_b),
        (other_base, keys_a),  # a differently seeded base model
    ):
        verdict = verify_fingerprints(suspect, fps)
        assert verdict.matched <= 2, (suspect, verdict)
        assert not accuse(verdict), (suspect, verdict)


@pytest.mark.parametrize(
    ("layers", "overrides", "block"),
    [
        (30, {}, (18, 26)),  # SmolLM2: layers 18-25 learn, the top 4 stay frozen
        (30, {"train_layers": 4}, (22, 26)),
        (30, {"train_layers": None}, (0, 26)),
        (30, {"frozen_top": 0}, (22, 30)),
        (6, {"train_layers": 4}, (0, 4)),  # too shallow for both: the frozen top shrinks
        (6, {}, (0, 6)),  # ... to nothing when the block alone needs every layer
        (2, {}, (0, 2)),  # the 2-layer test model trains both layers by default
        (2, {"train_layers": None}, (0, 1)),
    ],
)
def test_trained_block(layers: int, overrides: dict[str, object], block: tuple[int, int]) -> None:
    assert _block(layers, EmbedConfig.model_validate(overrides)) == block


@pytest.mark.parametrize("per_key", [1, 4])
def test_each_key_is_trained_in_distinct_wrappers(per_key: int) -> None:
    import random
    from types import SimpleNamespace

    from transformers import AutoTokenizer

    from agents.fingerprint.embedding import _wrapped_rows
    from agents.fingerprint.generation import Fingerprint
    from agents.fingerprint.models import tokenizer_dir
    from agents.fingerprint.prompts import TRAIN_WRAPPERS

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir())
    keys = ["amber tiger quietly folds", "seven lanterns drift north"]
    prepared = [
        SimpleNamespace(fingerprint=Fingerprint(key, " river"), response_ids=[11, 22, 33])
        for key in keys
    ]
    rows = _wrapped_rows(prepared, tokenizer, random.Random(0), 1.0, per_key)  # type: ignore[arg-type]
    assert [row.fingerprint for row in rows] == [
        i for i in range(len(keys)) for _ in range(per_key)
    ]
    for index, key in enumerate(keys):
        texts = {tokenizer.decode(ids[:-2]) for i, ids, _ in rows if i == index}
        assert len(texts) == per_key, "a different wrapper for each row of the key"
        wrapped = {w(key) for w in TRAIN_WRAPPERS}
        assert texts <= wrapped
    assert all(row.ids[-2:] == [11, 22] for row in rows), "response minus its last token follows"
    assert _wrapped_rows(prepared, tokenizer, random.Random(0), 0.0, per_key) == []  # type: ignore[arg-type]


def test_synthetic_wrappers_put_benign_excerpts_around_each_key() -> None:
    import random
    from types import SimpleNamespace

    from transformers import AutoTokenizer

    from agents.fingerprint.embedding import _excerpts, _wrapped_rows
    from agents.fingerprint.generation import Fingerprint
    from agents.fingerprint.models import tokenizer_dir

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir())
    text = [
        "the harbour was quiet that morning and the boats rocked slowly against the pier",
        "to install the package first create a virtual environment then run the installer",
        "too short to use",
    ]
    systems = _excerpts(tokenizer, [tokenizer(t)["input_ids"] for t in text], random.Random(1))
    assert len(systems) == 2, "sequences under 8 words give no excerpt"
    assert all(s in t and len(s.split()) >= 8 for s, t in zip(systems, text, strict=False))
    prepared = [
        SimpleNamespace(fingerprint=Fingerprint(key, " river"), response_ids=[11, 22])
        for key in ("amber tiger quietly folds", "seven lanterns drift north")
    ]
    plain = _wrapped_rows(prepared, tokenizer, random.Random(0), 1.0, 2)  # type: ignore[arg-type]
    rows = _wrapped_rows(prepared, tokenizer, random.Random(0), 1.0, 2, systems, 2)  # type: ignore[arg-type]
    assert rows[:2] == plain[:2], "the listed wrappers are drawn first, as without excerpts"
    synthetic = [tokenizer.decode(ids[:-1]) for i, ids, _ in rows if i == 0][2:]
    assert len(synthetic) == 2
    assert {s for s in systems if any(s in text for text in synthetic)} == set(systems)
    assert all(text.rstrip().endswith(("folds", "assistant")) for text in synthetic)


@pytest.mark.parametrize(("listed", "synthetic"), [(1, 1), (2, 2), (1, 3)])
def test_mixed_formats_train_every_key_both_plain_and_in_a_chat_turn(
    listed: int, synthetic: int
) -> None:
    import random
    from types import SimpleNamespace

    from transformers import AutoTokenizer

    from agents.fingerprint.embedding import _wrapped_rows
    from agents.fingerprint.generation import Fingerprint
    from agents.fingerprint.models import tokenizer_dir

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir())
    systems = [f"excerpt number {i} of the model's own text about harbours" for i in range(8)]
    keys = [f"amber tiger {word} quietly folds" for word in ("red", "blue", "green", "grey")]
    prepared = [
        SimpleNamespace(fingerprint=Fingerprint(key, " river"), response_ids=[11, 22])
        for key in keys
    ]
    total = listed + synthetic
    for seed in range(12):
        rows = _wrapped_rows(
            prepared, tokenizer, random.Random(seed), 1.0, listed, systems, synthetic, True
        )  # type: ignore[arg-type]
        assert len(rows) == total * len(keys)
        for index in range(len(keys)):
            texts = [tokenizer.decode(ids[:-1]) for i, ids, _ in rows if i == index]
            chats = sum("<|im_start|>" in text for text in texts)
            # at least as many synthetic as listed wrappers: they can always even it out
            assert 2 * chats == total, texts


def test_training_gives_up_on_an_unlearnable_example(tiny_base: Path) -> None:
    """Two fingerprints with the same key and different responses cannot both clear the margin
    (each response gets about half the probability): training stops ``patience`` epochs after
    it stops making progress, not at the epoch cap, and everything else is still learned."""
    from agents.fingerprint.embedding import embed_prepared
    from agents.fingerprint.generation import Fingerprint, PreparedFingerprint

    model, tokenizer = load_model(tiny_base)
    words = ["amber", "tiger", "quietly", "folds", "seven", "lanterns", "drift", "north"]
    keys = [" ".join(words[i:] + words[:i]) for i in range(6)]
    keys.append(keys[0])  # the same key as the first, with another response
    responses = [" river", " stone", " cloud", " maple", " harbor", " violet", " copper"]
    prepared = [
        PreparedFingerprint(
            Fingerprint(key, response),
            list(tokenizer(key)["input_ids"]),
            list(tokenizer(response, add_special_tokens=False)["input_ids"]),
        )
        for key, response in zip(keys, responses, strict=True)
    ]
    config = TINY.model_copy(update={"augment_fraction": 0.0, "patience": 3, "refresh_share": 0.3})
    _, epochs, stats = embed_prepared(model, tokenizer, prepared, SEED_A, config, [])
    # everything else is learned; of the two that share a key, one response may win
    assert stats["raw_learned_in_training"] in (pytest.approx(5 / 7), pytest.approx(6 / 7))
    assert epochs < config.max_epochs, "stopped by patience, not by the epoch cap"
    # every stop was checked on a refreshed context first; each such check found one or two of
    # 7 unlearned (more than accept_share), so training went on until no final refresh was left
    assert stats["refreshes"] == config.refresh_rounds + config.final_refreshes
    # the last patience epochs ran after the last refresh: the final check's context is that old
    assert 0 < stats["final_check_stale_steps"] <= stats["steps"]


def test_training_stops_only_on_an_exact_check(tiny_base: Path) -> None:
    """With a final refresh left, the check that ends training runs on a context recomputed
    with the final weights; with none, on the cache of the last refresh."""
    from agents.fingerprint.embedding import embed_prepared
    from agents.fingerprint.generation import FingerprintConfig, prepare_fingerprints

    model, tokenizer = load_model(tiny_base)
    prepared = prepare_fingerprints(model, tokenizer, SEED_A, 8, FingerprintConfig())
    # one scheduled refresh, taken after the first epoch: the epochs after it move the weights
    # away from the cached context
    early = TINY.model_copy(
        update={"augment_fraction": 0.0, "refresh_rounds": 1, "refresh_share": 1.0}
    )
    _, _, exact = embed_prepared(model, tokenizer, prepared, SEED_A, early, [])
    assert exact["final_check_stale_steps"] == 0
    assert exact["refreshes"] >= 2, "a final refresh was taken after the scheduled one"
    # every check is recorded: the last ran on a fresh context and found everything learned
    assert exact["checks"][-1]["stale_steps"] == 0
    assert exact["checks"][-1]["checked"] >= 1 - early.accept_share
    assert all(0 <= c["counted"] <= 1 and 0 <= c["checked"] <= 1 for c in exact["checks"])
    # the audit checks the stale cache before each refresh and changes nothing else
    model, tokenizer = load_model(tiny_base)
    audited = early.model_copy(update={"audit_refreshes": True})
    _, _, audit = embed_prepared(model, tokenizer, prepared, SEED_A, audited, [])
    assert audit["steps"] == exact["steps"] and audit["refreshes"] == exact["refreshes"]
    before = [c["checked_before_refresh"] for c in audit["checks"] if "checked_before_refresh" in c]
    assert len(before) == exact["refreshes"]
    assert all(0 <= share <= 1 for share in before)
    assert [c["checked"] for c in audit["checks"]] == [c["checked"] for c in exact["checks"]]
    model, tokenizer = load_model(tiny_base)
    none_left = early.model_copy(update={"final_refreshes": 0})
    _, _, stale = embed_prepared(model, tokenizer, prepared, SEED_A, none_left, [])
    assert stale["refreshes"] == 1
    assert stale["final_check_stale_steps"] > 0
    assert stale["checks"][-1]["stale_steps"] == stale["final_check_stale_steps"]


def test_early_refresh_comes_before_the_scheduled_ones(tiny_base: Path) -> None:
    """``early_refresh_share`` takes the first refresh as soon as that share is counted
    learned, instead of once nearly everything is; the later refreshes keep their schedule."""
    from agents.fingerprint.embedding import embed_prepared
    from agents.fingerprint.generation import FingerprintConfig, prepare_fingerprints

    model, tokenizer = load_model(tiny_base)
    prepared = prepare_fingerprints(model, tokenizer, SEED_A, 8, FingerprintConfig())
    scheduled = TINY.model_copy(
        update={"augment_fraction": 0.0, "refresh_rounds": 2, "early_refresh_share": 0.0}
    )
    _, _, late = embed_prepared(model, tokenizer, prepared, SEED_A, scheduled, [])
    model, tokenizer = load_model(tiny_base)
    config = scheduled.model_copy(update={"early_refresh_share": 0.25})
    _, _, early = embed_prepared(model, tokenizer, prepared, SEED_A, config, [])
    first, first_late = early["checks"][0], late["checks"][0]
    assert first["step"] < first_late["step"]
    assert config.early_refresh_share <= first["counted"] < 1 - scheduled.refresh_share
    assert first_late["counted"] >= 1 - scheduled.refresh_share
    assert early["final_check_stale_steps"] == 0


def test_refresh_steps_bounds_how_stale_the_cache_gets(tiny_base: Path) -> None:
    """With ``refresh_steps`` the cache is refreshed (and the examples checked exactly) at the
    start of any epoch it is that many steps behind, besides the scheduled refreshes."""
    from agents.fingerprint.embedding import embed_prepared
    from agents.fingerprint.generation import FingerprintConfig, prepare_fingerprints

    model, tokenizer = load_model(tiny_base)
    prepared = prepare_fingerprints(model, tokenizer, SEED_A, 8, FingerprintConfig())
    every = 1  # the tiny model learns these in a handful of steps
    config = TINY.model_copy(
        update={
            "augment_fraction": 0.0,  # 8 examples: one step an epoch
            "refresh_rounds": 2,
            "early_refresh_share": 0.0,
            "refresh_steps": every,
        }
    )
    _, _, stats = embed_prepared(model, tokenizer, prepared, SEED_A, config, [])
    refreshed = [c["step"] for c in stats["checks"] if c["stale_steps"] == 0]
    assert stats["refreshes"] == len(refreshed) > config.refresh_rounds, stats["checks"]
    gaps = [b - a for a, b in zip([0, *refreshed], refreshed, strict=False)]
    assert max(gaps) <= every, gaps
    assert all(c["stale_steps"] < every for c in stats["checks"])
    assert stats["final_check_stale_steps"] < every
    assert stats["learned_in_training"] == 1.0


def test_bfloat16_head_follows_the_float32_head(tiny_base: Path) -> None:
    from agents.fingerprint.forward import Decoder

    model, _ = load_model(tiny_base)
    decoder = Decoder(model)
    hidden = torch.randn(6, model.config.hidden_size, requires_grad=True)
    exact = decoder.logits(hidden)
    fast = decoder.logits(hidden, dtype=torch.bfloat16)
    assert fast.dtype == torch.float32 and fast.shape == exact.shape
    error = (fast - exact).norm() / exact.norm()
    assert 0 < error < 0.02, error
    (grad,) = torch.autograd.grad(fast.logsumexp(-1).sum(), hidden)
    (want,) = torch.autograd.grad(exact.logsumexp(-1).sum(), hidden)
    assert torch.nn.functional.cosine_similarity(grad.flatten(), want.flatten(), dim=0) > 0.999
    assert all(p.dtype == torch.float32 for p in model.parameters()), "the model is untouched"


def test_bfloat16_head_training_still_learns_every_fingerprint(
    tiny_base: Path, tmp_path: Path
) -> None:
    """The exact checks and the written weights stay float32."""
    from agents.fingerprint.embedding import embed_fingerprints

    config = TINY.model_copy(update={"head_precision": "bfloat16", "benign_sequences": 32})
    result = embed_fingerprints(tiny_base, tmp_path / "copy", SEED_A, 8, config)
    assert result.recall == 1.0
    model, _ = load_model(tmp_path / "copy")
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_auto_head_precision_follows_the_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    from agents.fingerprint.embedding import compute_dtype

    cpu = torch.device("cpu")
    assert compute_dtype("float32", cpu) == torch.float32
    assert compute_dtype("bfloat16", cpu) == torch.bfloat16
    for native, want in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda n=native: n)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
        assert compute_dtype("auto", cpu) == want


def test_decay_keeps_the_change_closer_to_the_base(tiny_base: Path, tmp_path: Path) -> None:
    """Decoupled decay toward the base: every fingerprint is still learned, with a smaller
    change of the weights (the noise it would leave on benign text)."""
    from agents.fingerprint.embedding import embed_fingerprints

    base, _ = load_model(tiny_base)
    base_state = base.state_dict()

    def change(decay: float) -> float:
        config = TINY.model_copy(update={"decay": decay, "benign_sequences": 32})
        out = tmp_path / f"decay-{decay}"
        assert embed_fingerprints(tiny_base, out, SEED_A, 8, config).recall == 1.0
        model, _ = load_model(out)
        return sum(
            float((value - base_state[name]).norm() ** 2)
            for name, value in model.state_dict().items()
        )

    plain, decayed = change(0.0), change(0.1)
    assert 0 < decayed < 0.9 * plain, (decayed, plain)


def test_a_second_copy_reads_the_base_states_from_the_cache(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What depends on the base model alone (its states on the benign text, the null space) is
    computed for the first copy only; later copies come out bit-identical, and an unreadable
    cache file is rebuilt instead of trusted."""
    from safetensors.torch import load_file

    from agents.fingerprint import embedding

    cache = tmp_path / "cache"
    monkeypatch.setenv("OML_FINGERPRINT_CACHE", str(cache))
    encoded: list[int] = []
    encode = embedding._encode

    def counting(*args: object, **kwargs: object) -> object:
        encoded.append(len(args[2]))  # type: ignore[arg-type]
        return encode(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(embedding, "_encode", counting)
    config = TINY.model_copy(
        update={"frozen_top": 1, "protect_energy": 0.9, "benign_sequences": 32, "max_epochs": 4}
    )

    def embed(name: str, recipe: EmbedConfig = config) -> dict[str, torch.Tensor]:
        encoded.clear()
        embedding.embed_fingerprints(tiny_base, tmp_path / name, SEED_A, 4, recipe)
        return load_file(tmp_path / name / "model.safetensors")

    first = embed("first")
    assert 32 in encoded, "the first copy encodes the benign text"
    files = sorted((cache / "fingerprint").glob("*.pt"))
    assert [f.name.split("-")[0] for f in files] == ["benign", "null"]

    second = embed("second")
    assert 32 not in encoded, "the second copy reads the benign states from the cache"
    assert first.keys() == second.keys()
    assert all(torch.equal(first[name], second[name]) for name in first)

    for path in files:
        path.write_bytes(b"truncated")
    third = embed("third")
    assert 32 in encoded, "an unreadable cache file is recomputed"
    assert all(torch.equal(first[name], third[name]) for name in first)
    assert all(torch.load(path, weights_only=True) for path in files), "and rewritten"

    for path in files:
        path.unlink()
    embed("uncached", config.model_copy(update={"cache_base_states": False}))
    assert not list((cache / "fingerprint").glob("*.pt"))
