"""Deploy the protocol (scripts/deploy.py, dev profile) to URL as deployments/NAME.json.

Run as a script (``python tests/dev/deploy_protocol.py URL NAME [INFRA]``) so that ape connects
to a private Anvil in its own process, leaving the test process's ape provider alone.
Infrastructure is test account 3 (the treasury's, as in `make demo`) unless INFRA names another
test account: the demo's e2e test uses 9 so that it checks both protocol cuts separately.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(url: str, name: str, infrastructure_index: int = 3) -> None:
    from ape import accounts, chain, networks

    sys.path.insert(0, str(ROOT / "scripts"))
    from deploy import DEV, deploy_all, write_deployment

    with networks.parse_network_choice("ethereum:local:node", provider_settings={"uri": url}):
        test = accounts.test_accounts
        block = chain.blocks.height + 1
        infrastructure = test[infrastructure_index]
        contracts = deploy_all(
            test[0], test[1], test[2], test[3], infrastructure=infrastructure, profile=DEV
        )
        roles = {
            "deployer": str(test[0].address),
            "oracle": str(test[1].address),
            "arbiter": str(test[2].address),
            "treasury": str(test[3].address),
            "infrastructure": str(infrastructure.address),
        }
        path = write_deployment(name, int(chain.chain_id), block, contracts, roles, DEV)
    print(path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:4]))
