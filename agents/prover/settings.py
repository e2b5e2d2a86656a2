"""Prover settings (env prefix ``OML_PROVER_``, or a ``.env`` file).

Every knob that changes what the prover *accuses* is here with its reason: the false-positive
bound of a leak accusation, the chance a clean model emits a fingerprint response, how many
keys a verdict rests on, and how many confirmations a commit needs before it is revealed.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.config import REPO_ROOT
from agents.fingerprint.detection import DEFAULT_CHANCE_BOUND, DEFAULT_THRESHOLD


class ProverSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OML_PROVER_", env_file=".env", extra="ignore")

    # identity and services
    network: str = Field("local", description="deployments/<network>.json to use")
    account: str = Field("dev:4", description="prover account: dev:N (local only) or keystore")
    state_dir: Path = Field(REPO_ROOT / ".run" / "prover", description="state DB, logs")
    key_service_url: str = Field("http://127.0.0.1:18700", description="oracle key service")
    http_timeout_s: float = Field(60.0, gt=0, description="timeout of one probe / key request")

    # keys
    keys_per_copy: int = Field(16, ge=1, le=64, description="usable keys to hold per copy")
    key_request_ttl_s: int = Field(120, ge=10, description="validity of a signed key request")

    # probing registered hosts (receipts vs reports)
    host_probe_calls: int = Field(3, ge=0, description="ordinary prompts per host per round")
    host_probe_keys: int = Field(1, ge=0, description="fingerprint keys mixed into each round")
    host_probe_max_tokens: int = Field(16, ge=1, description="max_tokens of ordinary prompts")
    challenge_missed_reports: bool = Field(True, description="slash epochs never reported")

    # probing watched endpoints (leaks)
    screen_keys: int = Field(2, ge=0, description="keys per copy in the screening stage")
    detect_keys: int = Field(12, ge=1, description="fresh keys per copy in the decision stage")
    cover_per_key: float = Field(0.5, ge=0, description="ordinary prompts per key sent")
    false_positive_bound: float = Field(
        DEFAULT_THRESHOLD,
        gt=0,
        lt=1,
        description="accuse only if a clean endpoint would match this well with at most this "
        "probability (family-wise over every copy tested in one session)",
    )
    chance_bound: float = Field(
        DEFAULT_CHANCE_BOUND, gt=0, lt=1, description="P(clean model emits a key's response)"
    )

    # challenges
    reveal_confirmations: int = Field(
        2, ge=0, description="blocks on top of a commit before reveal"
    )
    auto_leak_challenge: bool = Field(True, description="commit a leak as soon as it is decided")
    auto_claim: bool = Field(True, description="claim rewards and bonds once credited")

    # schedule (seconds)
    sync_interval_s: float = Field(15.0, gt=0)
    host_probe_interval_s: float = Field(60.0, gt=0)
    watch_interval_s: float = Field(300.0, gt=0)
    challenge_interval_s: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> ProverSettings:
        if self.detect_keys > self.keys_per_copy:
            raise ValueError("detect_keys must not exceed keys_per_copy")
        return self

    @property
    def state_path(self) -> Path:
        return self.state_dir / "prover.sqlite3"
