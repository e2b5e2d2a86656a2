"""Deploy the protocol for the browser tests to the chain at $OML_RPC_URL.

Writes ``deployments/<network>.json`` (``network`` from argv[1], e.g. ``test-frontend-18700``,
which the repository's .gitignore covers) through scripts/deploy.py's own functions, so the
browser tests use exactly what ``make demo`` deploys. Run with the repository's venv python.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))


def main(network: str) -> None:
    from ape import accounts, chain, networks

    from deploy import DEV, deploy_all, write_deployment  # type: ignore[import-not-found]

    with networks.parse_network_choice("ethereum:local:node"):
        test = accounts.test_accounts
        deployer, oracle, arbiter, treasury = test[0], test[1], test[2], test[3]
        deploy_block = chain.blocks.height + 1
        contracts = deploy_all(deployer, oracle, arbiter, treasury, profile=DEV)
        roles = {
            "deployer": str(deployer.address),
            "oracle": str(oracle.address),
            "arbiter": str(arbiter.address),
            "treasury": str(treasury.address),
            "infrastructure": str(treasury.address),
            "timelock": str(contracts["ProtocolTimelock"].address),
        }
        path = write_deployment(network, int(chain.chain_id), deploy_block, contracts, roles, DEV)
        print(path)


if __name__ == "__main__":
    main(sys.argv[1])
