"""Per-model governance as one share holder drives it: propose, vote for, execute if passed.

Price, minimum collateral and accepting a version belong to the model's share holders
(``ModelGovernor``), not to the registry owner. A holder of more than half of the shares
passes a proposal with its own vote at once; otherwise it stays active until its vote ends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import IntEnum

from web3.logs import DISCARD

from agents.chain.protocol import Protocol
from agents.creator.connection import call_struct
from agents.creator.errors import GovernanceError

log = logging.getLogger(__name__)

BPS = 10_000


class Action(IntEnum):
    """``IModelGovernor.Action``."""

    SET_PRICE = 0
    SET_MIN_COLLATERAL = 1
    SET_LICENSING_OPEN = 2
    ACCEPT_VERSION = 3


class ProposalState(IntEnum):
    """``IModelGovernor.ProposalState``."""

    NONE = 0
    ACTIVE = 1
    DEFEATED = 2
    SUCCEEDED = 3
    EXECUTED = 4


@dataclass(frozen=True)
class ProposalOutcome:
    proposal_id: int
    model_id: int
    action: str
    value: int
    state: str
    vote_end: int
    for_votes: int
    against_votes: int

    @property
    def executed(self) -> bool:
        return self.state == ProposalState.EXECUTED.name.lower()


class Governance:
    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        self.governor = protocol.contract("ModelGovernor")
        self.address = str(protocol.account.address)

    def enact(self, model_id: int, action: Action, value: int) -> ProposalOutcome:
        """Propose, vote for with this account's shares, execute if that passed it."""
        self._check_can_propose(model_id)
        receipt = self.protocol.sender.send(
            self.governor.functions.propose(model_id, int(action), value),
            label=f"propose {action.name} {value} for model {model_id}",
        )
        [event] = self.governor.events.ProposalCreated().process_receipt(receipt, errors=DISCARD)
        proposal_id = int(event["args"]["proposalId"])
        self.protocol.sender.send(
            self.governor.functions.castVote(proposal_id, True), label=f"vote on {proposal_id}"
        )
        if self.state(proposal_id) == ProposalState.SUCCEEDED:
            return self.execute(proposal_id)
        return self.outcome(proposal_id)

    def execute(self, proposal_id: int) -> ProposalOutcome:
        state = self.state(proposal_id)
        if state == ProposalState.NONE:
            raise GovernanceError(f"proposal {proposal_id} does not exist")
        if state != ProposalState.SUCCEEDED:
            outcome = self.outcome(proposal_id)
            raise GovernanceError(
                f"proposal {proposal_id} is {state.name.lower()} ({outcome.for_votes} for, "
                f"{outcome.against_votes} against, vote ends {outcome.vote_end}): only a "
                "succeeded proposal can be executed"
            )
        self.protocol.sender.send(
            self.governor.functions.execute(proposal_id), label=f"execute proposal {proposal_id}"
        )
        log.info("executed proposal %d", proposal_id)
        return self.outcome(proposal_id)

    def state(self, proposal_id: int) -> ProposalState:
        return ProposalState(int(self.governor.functions.state(proposal_id).call()))

    def outcome(self, proposal_id: int) -> ProposalOutcome:
        p = call_struct(self.governor, "getProposal", proposal_id)
        return ProposalOutcome(
            proposal_id=proposal_id,
            model_id=int(p["modelId"]),
            action=Action(int(p["action"])).name.lower(),
            value=int(p["value"]),
            state=self.state(proposal_id).name.lower(),
            vote_end=int(p["voteEnd"]),
            for_votes=int(p["forVotes"]),
            against_votes=int(p["againstVotes"]),
        )

    def _check_can_propose(self, model_id: int) -> None:
        shares = int(self.governor.functions.sharesOf(model_id, self.address).call())
        total = int(self.governor.functions.TOTAL_SHARES().call())
        threshold = total * int(self.governor.functions.proposalThresholdBps().call()) // BPS
        if shares == 0 or shares < threshold:
            raise GovernanceError(
                f"{self.address} holds {shares} of {total} shares of model {model_id}; "
                f"proposing needs at least {max(threshold, 1)}: use a share holder's account"
            )
