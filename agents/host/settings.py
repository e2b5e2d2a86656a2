"""Host settings: env prefix ``OML_HOST_``, optionally a TOML config file.

Precedence, highest first: explicit overrides (CLI flags), environment, ``.env``, the config
file (``--config`` or ``$OML_HOST_CONFIG``), defaults.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from agents.config import REPO_ROOT
from agents.host.errors import ConfigError

CONFIG_ENV = "OML_HOST_CONFIG"


class HostSettings(BaseSettings):
    """Everything one host process needs to serve and account for one copy."""

    model_config = SettingsConfigDict(env_prefix="OML_HOST_", env_file=".env", extra="ignore")

    # identity and chain
    network: str = Field("local", description="deployments/<network>.json to use")
    account: str = Field("dev:2", description="host signing account: dev:N (local) or keystore")
    copy_id: int = Field(0, ge=0, description="the licensed copy this host serves")
    chain: bool = Field(True, description="talk to the chain (false: offline serving, tests)")
    # serving
    model_dir: Path | None = Field(None, description="Hugging Face folder of the decrypted copy")
    model_name: str = Field("", description="name clients pass as `model` (default oml-copy-N)")
    listen_host: str = Field("127.0.0.1", description="address the HTTP server binds")
    port: int = Field(18800, ge=0, lt=65536, description="HTTP port (0 picks a free one)")
    device: str = Field("auto", description="torch device: auto, cpu, cuda, cuda:1 ...")
    max_tokens_limit: int = Field(512, ge=1, description="largest max_tokens a client may ask")
    default_max_tokens: int = Field(16, ge=1, description="max_tokens when the client omits it")
    max_prompt_tokens: int = Field(2048, ge=1, description="longest prompt accepted, in tokens")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="largest request body accepted")
    max_batch_size: int = Field(8, ge=1, description="requests generated together")
    batch_wait_ms: float = Field(5.0, ge=0, description="how long to wait to fill a batch")
    max_queue: int = Field(1024, ge=1, description="queued requests before answering 503")
    metering: bool = Field(True, description="sign and persist a receipt per call")
    shutdown_timeout_s: float = Field(30.0, gt=0, description="grace for in-flight requests")
    # state and reporting
    state_dir: Path = Field(REPO_ROOT / ".run" / "host", description="receipt ledger, logs")
    durable: bool = Field(True, description="fsync every receipt (SQLite synchronous=FULL)")
    report_interval_s: float = Field(30.0, gt=0, description="how often the reporter runs")
    report_grace_s: float = Field(5.0, ge=0, description="wait after an epoch ends to report")
    warn_epochs: int = Field(24, ge=1, description="warn when funds cover fewer epochs")
    # only used without a chain (chain: false); otherwise read from UsageLedger
    epoch_length_s: int = Field(3600, ge=1, description="offline epoch length")
    epoch_genesis: int = Field(0, ge=0, description="offline epoch 0 start (unix seconds)")
    chain_id: int = Field(31337, description="offline EIP-712 chainId for receipts")
    verifying_contract: str = Field(
        "0x0000000000000000000000000000000000000000",
        description="offline EIP-712 verifyingContract (ChallengeManager) for receipts",
    )

    @model_validator(mode="after")
    def _defaults(self) -> HostSettings:
        if not self.model_name:
            self.model_name = f"oml-copy-{self.copy_id}"
        if self.default_max_tokens > self.max_tokens_limit:
            raise ValueError("default_max_tokens must not exceed max_tokens_limit")
        return self

    @property
    def ledger_path(self) -> Path:
        return self.state_dir / f"receipts-{self.copy_id}.sqlite3"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, dotenv_settings, _TomlSource(settings_cls))


class _TomlSource(PydanticBaseSettingsSource):
    """The file named by ``$OML_HOST_CONFIG``; a ``[host]`` table or top-level keys."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get(CONFIG_ENV)
        if not path:
            return {}
        data = read_config_file(Path(path))
        return {k: v for k, v in data.items() if k in self.settings_cls.model_fields}


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read host config {path}: {error}") from error
    table = data.get("host", data)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [host] must be a table")
    return table


def load_settings(config: Path | None = None, **overrides: Any) -> HostSettings:
    """Settings from ``config`` (or ``$OML_HOST_CONFIG``), env and non-None ``overrides``."""
    if config is not None:
        os.environ[CONFIG_ENV] = str(config)
    try:
        return HostSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        raise ConfigError(f"invalid host settings: {error}") from error
