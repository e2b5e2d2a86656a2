"""Settings shared by every agent, read from the environment (``OML_*``) or a ``.env`` file.

Defaults avoid the ports common services use (8545, 5001, 8080) so a developer's own node
or gateway never collides with the local world.
"""

from __future__ import annotations

from functools import lru_cache
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Where the local world runs and where agents find it."""

    model_config = SettingsConfigDict(env_prefix="OML_", env_file=".env", extra="ignore")

    host: str = Field("127.0.0.1", description="Loopback address every local service binds to")
    anvil_port: int = Field(18545, description="JSON-RPC port of the local Anvil chain")
    chain_id: int = Field(31337, description="Chain id of the local Anvil chain")
    ipfs_api_port: int = Field(15001, description="RPC (Kubo-compatible HTTP API) port of IPFS")
    ipfs_gateway_port: int = Field(18080, description="HTTP gateway port of the local IPFS node")
    ipfs_grpc_port: int = Field(15003, description="gRPC port of the local js-ipfs node")
    ipfs_swarm_port: int = Field(14001, description="Swarm TCP port (node runs offline)")
    run_dir: Path = Field(REPO_ROOT / ".run", description="Logs, pids and node state")
    fork_url: str = Field("", description="When set, Anvil forks this RPC (testers' fork mode)")
    fork_block: int | None = Field(None, description="Block number to fork at (default: latest)")
    rpc_url: str = Field("", description="Chain JSON-RPC URL; defaults to the local Anvil")
    ipfs_api_url: str = Field("", description="IPFS RPC API URL; defaults to the local node")
    ipfs_timeout_s: float = Field(30.0, description="Default timeout of one IPFS RPC call")

    @model_validator(mode="after")
    def _default_urls(self) -> Settings:
        if not self.rpc_url:
            self.rpc_url = f"http://{self.host}:{self.anvil_port}"
        if not self.ipfs_api_url:
            self.ipfs_api_url = f"http://{self.host}:{self.ipfs_api_port}"
        return self

    @property
    def ipfs_api_multiaddr(self) -> str:
        """The API URL as the multiaddr ipfshttpclient expects."""
        url = urlsplit(self.ipfs_api_url)
        host = url.hostname or "127.0.0.1"
        try:
            kind = "ip4" if ip_address(host).version == 4 else "ip6"
        except ValueError:
            kind = "dns"
        return f"/{kind}/{host}/tcp/{url.port or 80}/{url.scheme or 'http'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
