"""Demo settings: environment ``DEMO_*`` (``DEMO_MODEL=tiny make demo``) or options of
``scripts/demo.py``. Amounts are fee-token base units (MockUSD: 6 decimals)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

USD = 10**6


class DemoSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_", extra="ignore")

    model: Literal["tiny", "smollm2"] = Field(
        "tiny", description="tiny: random 2-layer Llama (minutes); smollm2: SmolLM2-135M (slow)"
    )
    network: str = Field("local", description="deployments/<network>.json to play on")
    run_dir: Path | None = Field(None, description="state and logs (default <OML_RUN_DIR>/demo)")
    port_base: int = Field(18810, description="key service = base, hosts base+1/+2, rogue +3")
    fingerprints: int = Field(16, ge=16, description="fingerprints per copy (prover needs 16)")
    recall_threshold: float | None = Field(
        None, gt=0, le=1, description="oracle's delivery threshold (tiny 0.75, smollm2 0.95)"
    )
    calls: int = Field(20, ge=1, description="load-generator calls per host per wave (2 waves)")
    rogue_calls: int = Field(10, ge=0, description="calls the rogue endpoint's users make")
    concurrency: int = Field(4, ge=1, description="concurrent load-generator clients per host")
    leak: bool = Field(True, description="host B under-reports and leaks its copy")
    prover: bool = Field(True, description="run the prover bot when this build has one")
    torch_threads: int = Field(0, ge=0, description="OMP threads per agent (0: torch default)")
    base_price: int = Field(20_000, ge=1, description="price per call of the base model")
    derivative_price: int = Field(50_000, ge=1, description="price per call of the derivative")
    royalty_bps: int = Field(2000, ge=1, le=10_000, description="derivative's share to the base")
    shares_sold_bps: int = Field(2500, ge=0, lt=10_000, description="base shares sold to investor")
    collateral: int = Field(1_000 * USD, ge=1, description="each host's stake")
    min_collateral: int = Field(500 * USD, ge=1, description="models' minimum collateral")
    delivery_timeout_s: float = Field(1800.0, gt=0, description="wait for the oracle")

    def threshold(self) -> float:
        if self.recall_threshold is not None:
            return self.recall_threshold
        return 0.75 if self.model == "tiny" else 0.95
