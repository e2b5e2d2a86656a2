// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IModelGovernor
/// @notice Per-model divisible ownership: `TOTAL_SHARES` (1e18) shares minted to the registrant,
/// transferable, with vote checkpoints per block. Shares are what the model's lineage revenue
/// pays (FeeRouter, pro rata). Holders propose and vote on the model's price, minimum
/// collateral, licensing open/paused and accepting a new version. A proposal passes when, after
/// the voting period, for-votes reach the quorum and exceed against-votes — or at once when
/// for-votes exceed half of all shares. Votes count balances at the block before the proposal.
interface IModelGovernor {
    enum Action {
        SetPrice,
        SetMinCollateral,
        SetLicensingOpen,
        AcceptVersion
    }

    enum ProposalState {
        None,
        Active,
        Defeated,
        Succeeded,
        Executed
    }

    struct Proposal {
        uint256 modelId;
        uint256 value;
        Action action;
        bool executed;
        address proposer;
        uint48 snapshotBlock;
        uint64 voteEnd;
        uint256 forVotes;
        uint256 againstVotes;
    }

    error ZeroAmount();
    error ZeroAddress();
    error UnknownModel(uint256 modelId);
    error InsufficientShares(uint256 have, uint256 want);
    error BelowProposalThreshold(uint256 votes, uint256 threshold);
    error UnknownProposal(uint256 proposalId);
    error VotingClosed(uint256 proposalId);
    error AlreadyVoted(uint256 proposalId, address voter);
    error NoVotingPower(address voter);
    error NotSucceeded(uint256 proposalId, ProposalState state);
    error InvalidValue(uint256 value);
    error BadParams();
    error Unauthorized(address caller);
    error FutureLookup(uint256 blockNumber);

    event SharesTransferred(uint256 indexed modelId, address indexed from, address indexed to, uint256 amount);
    event ProposalCreated(
        uint256 indexed proposalId,
        uint256 indexed modelId,
        address indexed proposer,
        Action action,
        uint256 value,
        uint256 snapshotBlock,
        uint256 voteEnd
    );
    event VoteCast(uint256 indexed proposalId, address indexed voter, bool support, uint256 weight);
    event ProposalExecuted(uint256 indexed proposalId, uint256 indexed modelId);
    event GovernanceParamsChanged(uint64 votingPeriod, uint16 quorumBps, uint16 proposalThresholdBps);

    function transferShares(uint256 modelId, address to, uint256 amount) external;
    function propose(uint256 modelId, Action action, uint256 value) external returns (uint256 proposalId);
    function castVote(uint256 proposalId, bool support) external;
    function execute(uint256 proposalId) external;

    function sharesOf(uint256 modelId, address account) external view returns (uint256);
    function getPastVotes(uint256 modelId, address account, uint256 blockNumber) external view returns (uint256);
    function state(uint256 proposalId) external view returns (ProposalState);
    function getProposal(uint256 proposalId) external view returns (Proposal memory);

    /// @notice ModelRegistry only: mint the whole of a new model's shares to its registrant.
    function onModelRegistered(uint256 modelId, address owner) external;
}
