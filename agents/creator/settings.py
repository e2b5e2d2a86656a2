"""Creator settings: environment ``OML_CREATOR_*`` (or ``.env``); command options override."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CreatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OML_CREATOR_", env_file=".env", extra="ignore")

    network: str = Field("local", description="deployments/<network>.json to use")
    keystore: Path | None = Field(None, description="encrypted JSON keystore of the creator")
    dev_account: int | None = Field(
        None, ge=0, description="Anvil test account index (local chain only)"
    )
    password_env: str = Field(
        "OML_KEYSTORE_PASSWORD", description="environment variable with the keystore password"
    )
    oracle_pubkey: str = Field(
        "", description="oracle public key (128 hex digits) base weights are encrypted to"
    )

    def account_spec(self) -> str:
        """What :func:`agents.chain.keystore.resolve_account` takes."""
        if self.keystore is not None and self.dev_account is not None:
            raise ValueError("pass either --keystore or --dev-account, not both")
        if self.keystore is not None:
            return str(self.keystore)
        if self.dev_account is not None:
            return f"dev:{self.dev_account}"
        raise ValueError(
            "no account: pass --keystore FILE (password in $OML_KEYSTORE_PASSWORD) or, on the "
            "local chain, --dev-account N"
        )
