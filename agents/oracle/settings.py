"""Oracle settings (env prefix ``OML_ORACLE_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.config import REPO_ROOT
from agents.fingerprint.profiles import profile_settings


class OracleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OML_ORACLE_", env_file=".env", extra="ignore")

    network: str = Field("local", description="deployments/<network>.json to use")
    account: str = Field("dev:1", description="signing account: dev:N (local only) or a keystore")
    state_dir: Path = Field(REPO_ROOT / ".run" / "oracle", description="jobs DB, work files")
    master_secret: Path = Field(
        REPO_ROOT / ".run" / "oracle" / "master.secret", description="32-byte secret (hex)"
    )
    fingerprint_count: int = Field(64, ge=1, description="fingerprints per copy")
    recall_threshold: float = Field(0.95, gt=0, le=1, description="minimum recall to deliver")
    confirmations: int = Field(0, ge=0, description="blocks to wait before acting on an event")
    poll_interval_s: float = Field(1.0, gt=0)
    key_service_port: int = Field(18700, description="port of the prover key service")
    embed_profile: str = Field(
        "robust", description="named embedding settings: robust or fast (docs/fingerprinting.md)"
    )
    embed: dict[str, Any] = Field(
        default_factory=dict,
        description='EmbedConfig overrides over the profile as JSON, e.g. {"learning_rate": 0.01}',
    )

    @field_validator("embed_profile")
    @classmethod
    def _known_profile(cls, name: str) -> str:
        profile_settings(name)  # its ValueError names the choices
        return name
