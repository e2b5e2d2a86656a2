"""Deploy the protocol (dev profile) to URL as deployments/NAME.json, for the demo's e2e test.

Run as a script (``python tests/e2e/deploy_demo.py URL NAME``) so that ape connects in its own
process. Infrastructure is a different account from the treasury here (test account 9), so the
test checks both cuts separately; `make demo` keeps them on one account (scripts/deploy.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(url: str, name: str) -> None:
    from ape import accounts, chain, networks

    sys.path.insert(0, str(ROOT / "scripts"))
    from deploy import DEV, deploy_all, write_deployment

    with networks.parse_network_choice("ethereum:local:node", provider_settings={"uri": url}):
        test = accounts.test_accounts
        block = chain.blocks.height + 1
        contracts = deploy_all(
            test[0], test[1], test[2], test[3], infrastructure=test[9], profile=DEV
        )
        roles = {
            "deployer": str(test[0].address),
            "oracle": str(test[1].address),
            "arbiter": str(test[2].address),
            "treasury": str(test[3].address),
            "infrastructure": str(test[9].address),
        }
        path = write_deployment(name, int(chain.chain_id), block, contracts, roles, DEV)
    print(path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
