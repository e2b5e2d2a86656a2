"""Leaked copies caught by the prover bot: real fingerprints, real detection, slash after liveness.

Each scenario builds its stage with :func:`agents.dev.scenarios.fingerprinted.leak_world` (the
oracle embeds and delivers tiny fingerprinted copies, its key service hands keys to provers),
serves a leaked model on an unregistered endpoint, and lets :class:`agents.prover.service.Prover`
do the rest: fresh keys, the decision at a family-wise false-positive bound of 1e-9, evidence,
commit, reveal, liveness (time travel), finalize, claim.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from agents.dev.devchain import COPY_STATES, LEAK_STATES
from agents.dev.errors import ScenarioError
from agents.dev.scenarios.common import COLLATERAL, reward_for, slash_amount
from agents.dev.scenarios.registry import ScenarioContext, scenario

if TYPE_CHECKING:
    from agents.dev.actors import Prover as ProverActor
    from agents.dev.scenarios.fingerprinted import LeakWorld
    from agents.prover.service import Prover

REQUIRES = ("agents.prover", "agents.oracle", "torch", "transformers", "uvicorn")
FP_BOUND = 1e-9
# Light benign fine-tune of the leaked copy: AdamW on unrelated text (the test suites' helper).
FINETUNE_STEPS = 20
FINETUNE_LR = 1e-3
# Screening is off: with 16 fingerprints per copy every key goes to the decision, whose bound
# needs 10 to 16 fresh keys per copy (9 keys at least for one copy, 10 for two).
PROVER_SETTINGS: dict[str, Any] = {"screen_keys": 0, "detect_keys": 16}


def _catch(ctx: ScenarioContext, world: LeakWorld, bot: Prover, url: str) -> list[dict[str, Any]]:
    """The prover probes ``url`` with every live copy of the model's fresh keys; accusations
    are committed at once. Returns the decisions (accused or not), one per copy tested."""
    started = time.monotonic()
    bot.sync()
    found = bot.probe_endpoint(url, model_id=world.model_id)
    ctx.fact("detectSeconds", round(time.monotonic() - started, 1))
    ctx.fact(
        "detections",
        {
            str(f["copyId"]): {
                "matched": f["matched"],
                "queried": f["queried"],
                "falsePositiveProbability": f["falsePositiveProbability"],
                "threshold": f["threshold"],
                "accused": f["accused"],
                "evidenceCID": f["evidenceCID"],
            }
            for f in found
        },
    )
    ctx.step(
        f"the prover probed {url} with fresh keys of every copy of model {world.model_id}: "
        + "; ".join(
            f"copy {f['copyId']} {f['matched']}/{f['queried']} "
            f"(false-positive p={f['falsePositiveProbability']:.1e}, "
            f"{'accused' if f['accused'] else 'not accused'})"
            for f in found
        )
    )
    return found


def _prosecute(ctx: ScenarioContext, world: LeakWorld, bot: Prover) -> dict[int, int]:
    """Reveal every committed leak challenge after one block, skip liveness, finalize.
    Returns {copy id: on-chain challenge id}."""
    dev = world.dev
    rows = bot.state.challenges(kind="leak")
    committed = {r.copy_id: int(r.onchain_id or 0) for r in rows if r.state == "committed"}
    dev.node.mine()  # the reveal waits for one block on top of the commit
    bot.advance()
    rows = bot.state.challenges(kind="leak")
    revealed = {r.copy_id: int(r.onchain_id or 0) for r in rows if r.state == "revealed"}
    ctx.step(
        f"it committed leak challenge(s) {sorted(committed.values())} and revealed "
        f"{sorted(revealed.values())} a block later (key, salt, Merkle proof, evidence CID)"
    )
    if not revealed:
        raise ScenarioError(f"no leak challenge was revealed: {[r.as_dict() for r in rows]}")
    ends = {cid: world.dev.challenge_window(cid).ends_at for cid in revealed.values()}
    dev.node.warp_to(max(ends.values()) + 1)
    bot.advance()
    ctx.step(
        "nobody disputed; past the liveness window the prover finalized: "
        + ", ".join(f"{r.onchain_id} {r.state}" for r in bot.state.challenges(kind="leak"))
    )
    return revealed


def _check_evidence(world: LeakWorld, found: dict[str, Any]) -> dict[str, Any]:
    """The arbiter's own re-check of an evidence document (what a dispute would rest on)."""
    from agents.arbiter.service import check_evidence

    document = json.loads(world.store.cat(str(found["evidenceCID"])))
    root = bytes(world.dev.copy(int(found["copyId"]))["fpRoot"])
    checked = check_evidence(document, copy_id=int(found["copyId"]), fp_root=root)
    return {
        "matched": checked.matched,
        "queried": checked.queried,
        "proofsOk": checked.proofs_ok,
        "familyFalsePositive": checked.family_false_positive,
        "problems": list(checked.problems),
    }


def _expect_slashed(
    ctx: ScenarioContext,
    world: LeakWorld,
    actor: ProverActor,
    bot: Prover,
    found: list[dict[str, Any]],
    challenges: dict[int, int],
    leaked: list[str],
    wallet_before: int,
) -> None:
    """Every leaked host's copy: accused at <= 1e-9, Upheld, slashed, Exiting; the prover paid."""
    dev = world.dev
    slashed = slash_amount(COLLATERAL, int(dev.params()["leakSlashBps"]))
    reward = reward_for(ctx, slashed)
    by_copy = {int(f["copyId"]): f for f in found}
    rows = {r.copy_id: r for r in bot.state.challenges(kind="leak")}
    for host in leaked:
        copy_id = world.copy_id(host)
        detection = by_copy.get(copy_id, {})
        fpp = detection.get("falsePositiveProbability")
        ctx.fact(f"falsePositiveProbability({host})", fpp)
        evidence = _check_evidence(world, detection) if detection.get("evidenceCID") else {}
        ctx.fact(f"arbiterCheck({host})", evidence)
        copy = dev.copy(copy_id)
        challenge_id = challenges.get(copy_id)
        state = LEAK_STATES[int(dev.leak(challenge_id)["state"])] if challenge_id else None
        row = rows.get(copy_id)
        ctx.expect(f"{host}'s copy accused", True, bool(detection.get("accused")))
        ctx.expect(
            f"{host}: false-positive probability <= 1e-9",
            True,
            fpp is not None and float(fpp) <= FP_BOUND,
        )
        ctx.expect(
            f"{host}: the arbiter's re-check finds no problem",
            [],
            evidence.get("problems", ["no evidence"]),
        )
        ctx.expect(f"{host}: challenge state", "Upheld", state)
        ctx.expect(f"{host}: collateral slashed", slashed, int(copy["slashed"]))
        ctx.expect(f"{host}: copy state", "Exiting", COPY_STATES[int(copy["state"])])
        ctx.expect(
            f"{host}: prover's reward (min(slash x rewardBps, cap))",
            reward,
            row.reward if row is not None else None,
        )
    ctx.fact("challengeIds", {h: challenges.get(world.copy_id(h)) for h in leaked})
    ctx.expect(
        "prover's wallet: bonds back plus the rewards, claimed",
        len(leaked) * reward,
        dev.protocol(actor.account).token_balance(actor.address) - wallet_before,
    )
    ctx.expect("prover's challenges", ["upheld"] * len(leaked), [r.state for r in rows.values()])


def _run_leak(
    ctx: ScenarioContext, slots: dict[str, str], leaked: list[str], *, tune: bool = False
) -> None:
    from agents.dev.scenarios.fingerprinted import leak_world

    with leak_world(ctx, slots) as world:
        models = {host: world.load(host) for host in leaked}
        if len(leaked) > 1:
            from agents.fingerprint.evaluation import average_models

            (a, tokenizer), (b, _) = (models[h] for h in leaked)
            model = (average_models(a, b), tokenizer)
            ctx.step(
                f"{' and '.join(leaked)} merged their copies (weights averaged 50/50) and "
                "serve the merge on one unregistered endpoint"
            )
        elif tune:
            from agents.fingerprint.evaluation import benign_finetune, perplexity

            original, tokenizer = models[leaked[0]]
            started = time.monotonic()
            tuned = benign_finetune(
                original, tokenizer, steps=FINETUNE_STEPS, learning_rate=FINETUNE_LR
            )
            before, after = perplexity(original, tokenizer), perplexity(tuned, tokenizer)
            ctx.fact(
                "finetune",
                {
                    "steps": FINETUNE_STEPS,
                    "learningRate": FINETUNE_LR,
                    "perplexityBefore": before,
                    "perplexityAfter": after,
                    "seconds": round(time.monotonic() - started, 1),
                },
            )
            ctx.expect("fine-tune lowered held-out perplexity", True, after < before)
            model = (tuned, tokenizer)
            ctx.step(
                f"{leaked[0]} fine-tuned its copy ({FINETUNE_STEPS} AdamW steps on unrelated "
                f"text: held-out perplexity {before:.3g} -> {after:.3g}) and serves it on an "
                "unregistered endpoint"
            )
        else:
            model = models[leaked[0]]
            ctx.step(f"{leaked[0]} leaked its copy to an unregistered endpoint")
        rogue = world.rogue(model)
        ctx.fact("rogueEndpoint", rogue.url)
        actor, bot = world.prover(**PROVER_SETTINGS)
        wallet = world.dev.protocol(actor.account).token_balance(actor.address)
        found = _catch(ctx, world, bot, rogue.url)
        challenges = _prosecute(ctx, world, bot)
        innocent = [h for h in slots if h not in leaked]
        for host in innocent:
            copy = world.dev.copy(world.copy_id(host))
            ctx.expect(f"{host} (did not leak): collateral slashed", 0, int(copy["slashed"]))
        _expect_slashed(ctx, world, actor, bot, found, challenges, leaked, wallet)


@scenario(
    "leaked-copy",
    title="Leaked copy: a host's fingerprinted copy served by an unregistered endpoint",
    expected="the prover bot detects the copy on fresh keys at false-positive <= 1e-9, commits, "
    "reveals, and after liveness the challenge is Upheld: leakSlashBps of the collateral "
    "slashed, the copy forced to Exiting, the prover paid min(slash x rewardBps, cap)",
    requires=REQUIRES,
)
def leaked_copy(ctx: ScenarioContext) -> None:
    _run_leak(ctx, {"host": "a"}, ["host"])


@scenario(
    "leaked-after-finetune",
    title="Leaked after a fine-tune: the rogue serves the copy after a light benign fine-tune",
    expected="the fingerprints survive the fine-tune: detected at false-positive <= 1e-9, "
    "challenge Upheld, leakSlashBps slashed, copy Exiting, the prover paid",
    requires=REQUIRES,
)
def leaked_after_finetune(ctx: ScenarioContext) -> None:
    _run_leak(ctx, {"host": "a"}, ["host"], tune=True)


@scenario(
    "colluding-merge",
    title="Colluding merge: two hosts average their copies and serve the merge",
    expected="one probe session identifies both copies (each at false-positive <= 1e-9 / 2); "
    "both challenges are Upheld, both copies slashed leakSlashBps and forced to Exiting, the "
    "prover paid twice",
    requires=REQUIRES,
)
def colluding_merge(ctx: ScenarioContext) -> None:
    _run_leak(ctx, {"host-a": "a", "host-b": "b"}, ["host-a", "host-b"])
