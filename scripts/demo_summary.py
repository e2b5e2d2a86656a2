"""Print what `make demo` left running and where: chain, IPFS, deployed contracts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from agents.config import REPO_ROOT, get_settings
from agents.world import chain_answers, ipfs_answers, status


def main() -> int:
    settings = get_settings()
    deployment_file = REPO_ROOT / "deployments" / "local.json"
    if not deployment_file.exists():
        print("no deployments/local.json: run `make demo` again", file=sys.stderr)
        return 1
    deployment = json.loads(deployment_file.read_text())
    world = status(settings)
    chain_id = chain_answers(settings.rpc_url)
    ipfs_agent = ipfs_answers(settings.ipfs_api_url)

    print("\n=== OML Hub local world ===")
    print(f"chain   {settings.rpc_url}  chain id {chain_id}  pid {world['anvil']['pid']}")
    ipfs_state = ipfs_agent or "NOT ANSWERING"
    print(f"ipfs    {settings.ipfs_api_url}/api/v0  ({ipfs_state})  pid {world['ipfs']['pid']}")
    print(f"deployed at block {deployment.get('deployBlock')} (deployments/local.json):")
    for name, info in sorted(deployment.get("contracts", {}).items()):
        print(f"  {name:<20} {info['address']}   abi {info.get('abi', '-')}")
    for role, address in sorted(deployment.get("roles", {}).items()):
        print(f"  role {role:<15} {address}")
    print(f"logs and pids in {_relative(Path(settings.run_dir))}/")
    print("explore: `.venv/bin/oml doctor`, `.venv/bin/oml --help`; stop with `make down`")
    print("the story: `.venv/bin/python scripts/demo.py` (make demo plays it next; docs/demo.md)")
    ok = chain_id == settings.chain_id and ipfs_agent is not None
    return 0 if ok else 1


def _relative(path: Path) -> Path:
    try:
        return path.relative_to(REPO_ROOT)
    except ValueError:  # OML_RUN_DIR outside the repository
        return path


if __name__ == "__main__":
    raise SystemExit(main())
