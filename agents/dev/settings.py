"""Dev-tool settings: ``OML_NETWORK`` picks the deployment every ``oml dev`` command uses."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DevSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OML_", env_file=".env", extra="ignore")

    network: str = Field(
        "",
        description="deployments/<network>.json to use; empty: the running fork's alias "
        "(written by `oml dev up --fork`) if any, else `local`",
    )
