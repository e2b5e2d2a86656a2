"""Errors of the creator role; each says what to do next."""

from __future__ import annotations


class CreatorError(RuntimeError):
    """Base class of creator errors."""


class ConnectionProblem(CreatorError):
    """The chain, the deployment or the account cannot be used."""


class RegistrationError(CreatorError):
    """A model or version cannot be registered as asked."""


class GovernanceError(CreatorError):
    """A proposal cannot be made, voted or executed."""


# Custom errors of the contracts -> what to do about them (shown after the decoded name).
HINTS: dict[str, str] = {
    "RoyaltyStackTooHigh": "the parents' shares add up to more than --max-royalty-stack allows",
    "TooManyParents": "a model names at most 4 parents",
    "TooManyAncestors": "the merged family tree would exceed 32 ancestors",
    "DepthTooHigh": "the family tree would be deeper than 8 generations",
    "DuplicateParent": "name each parent once",
    "ZeroShare": "every parent needs a share of at least 1 bps",
    "UnknownModel": "check the model id (`oml creator show ID`)",
    "NotModelOwner": "only the model's owner account may publish versions: pass its key",
    "EmptyCID": "give a non-empty CID",
    "BelowProposalThreshold": "this account holds too few shares of the model to propose",
    "NoVotingPower": "this account held no shares when the proposal was made",
    "NotSucceeded": "the proposal has not passed (yet): wait for the vote to end, or more votes",
    "InvalidValue": "the value does not fit (prices and collateral are < 2^128 base units)",
}


def hint_for(error_name: str | None) -> str:
    return HINTS.get(error_name or "", "")
