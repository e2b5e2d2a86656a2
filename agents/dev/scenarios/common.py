"""The stage most scenarios start from: a model, a licensed and delivered copy, a prover."""

from __future__ import annotations

from dataclasses import dataclass

from agents.dev.actors import USD, Creator, FingerprintedCopy, Host, Oracle, Prover
from agents.dev.scenarios.registry import ScenarioContext

PRICE = USD // 100  # 0.01 mUSD per call
COLLATERAL = 1_000 * USD
HOST_FUNDS = COLLATERAL + 500 * USD  # collateral, fees, a counter-bond
PROVER_FUNDS = 1_000 * USD  # prover bond and challenge bonds
BPS = 10_000


@dataclass
class Stage:
    creator: Creator
    model_id: int
    host: Host
    copy: FingerprintedCopy
    oracle: Oracle

    @property
    def copy_id(self) -> int:
        return self.copy.copy_id


def licensed_copy(ctx: ScenarioContext, host_name: str = "host") -> Stage:
    """A fresh creator's model, a fresh host's delivered copy, at the start of an epoch."""
    dev = ctx.dev
    dev.node.warp_to(dev.epoch_end(dev.current_epoch()))  # a whole epoch of room ahead
    creator = Creator.funded(dev, "creator")
    model_id = creator.publish_model(price_per_call=PRICE, min_collateral=COLLATERAL)
    host = Host.funded(dev, host_name, token=HOST_FUNDS)
    host.license(model_id, COLLATERAL)
    oracle = Oracle(dev)
    copy = oracle.deliver(host.copy_id)
    ctx.fact("modelId", model_id)
    ctx.fact("copyId", copy.copy_id)
    ctx.fact("host", host.address)
    ctx.step(
        f"creator registered model {model_id}; {host_name} staked {COLLATERAL / USD:,.0f} mUSD "
        f"for copy {copy.copy_id}; the oracle delivered it with {len(copy.fingerprints)} "
        "fingerprints"
    )
    return Stage(creator, model_id, host, copy, oracle)


def bonded_prover(ctx: ScenarioContext, name: str = "prover") -> Prover:
    prover = Prover.funded(ctx.dev, name, token=PROVER_FUNDS)
    prover.register()
    ctx.fact(name, prover.address)
    return prover


def slash_amount(collateral: int, bps: int) -> int:
    return collateral * bps // BPS


def reward_for(ctx: ScenarioContext, slashed: int) -> int:
    params = ctx.dev.params()
    return min(
        slashed * int(params["challengerRewardBps"]) // BPS, int(params["challengerRewardCap"])
    )
