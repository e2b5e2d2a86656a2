"""Storage settings (``OML_STORAGE_*``); the node URL and timeout live in agents.config."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StorageSettings(BaseSettings):
    """How hard to try, how much to read at once, how to encrypt."""

    model_config = SettingsConfigDict(env_prefix="OML_STORAGE_", env_file=".env", extra="ignore")

    retries: int = Field(3, ge=1, description="Attempts per call on connection errors")
    backoff_s: float = Field(0.5, ge=0, description="First retry delay; doubles each attempt")
    read_size: int = Field(1 << 20, ge=4096, description="Bytes read or sent per I/O step")
    encryption_chunk_size: int = Field(
        1 << 20, ge=4096, le=16 << 20, description="Plaintext bytes per AES-GCM chunk"
    )
    keystore_password_env: str = Field(
        "OML_KEYSTORE_PASSWORD", description="Environment variable holding the keystore password"
    )
    block_fallback: bool = Field(
        True,
        description="When a file's bytes do not match its CID under the default layout, "
        "re-fetch it block by block (each block hash-checked) before declaring it tampered",
    )


@lru_cache(maxsize=1)
def get_storage_settings() -> StorageSettings:
    return StorageSettings()
