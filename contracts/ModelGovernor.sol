// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IModelGovernor} from "./interfaces/IModelGovernor.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {IFeeRouter} from "./interfaces/IFeeRouter.sol";

/// @title ModelGovernor
/// @notice Divisible per-model ownership shares with vote checkpoints, and per-model proposals.
contract ModelGovernor is IModelGovernor, Ownable {
    using Checkpoints for Checkpoints.Trace208;
    using SafeCast for uint256;

    /*//////////////////////////////////////////////////////////////
                                 STATE
    //////////////////////////////////////////////////////////////*/

    uint256 public constant TOTAL_SHARES = 1e18;
    uint256 public constant BPS = 10_000;

    IModelRegistry public immutable registry;
    IFeeRouter public immutable router;

    uint64 public votingPeriod;
    uint16 public quorumBps;
    uint16 public proposalThresholdBps;

    uint256 public nextProposalId = 1;
    mapping(uint256 modelId => mapping(address account => uint256)) private _shares;
    mapping(uint256 modelId => mapping(address account => Checkpoints.Trace208)) private _votes;
    mapping(uint256 proposalId => Proposal) private _proposals;
    mapping(uint256 proposalId => mapping(address voter => bool)) public hasVoted;

    constructor(
        address owner_,
        IModelRegistry registry_,
        IFeeRouter router_,
        uint64 votingPeriod_,
        uint16 quorumBps_,
        uint16 proposalThresholdBps_
    ) Ownable(owner_) {
        if (address(registry_) == address(0) || address(router_) == address(0)) revert ZeroAddress();
        registry = registry_;
        router = router_;
        _setParams(votingPeriod_, quorumBps_, proposalThresholdBps_);
    }

    /// @notice Timelock: voting period (seconds), quorum and proposal threshold (bps of shares).
    function setParams(uint64 votingPeriod_, uint16 quorumBps_, uint16 proposalThresholdBps_) external onlyOwner {
        _setParams(votingPeriod_, quorumBps_, proposalThresholdBps_);
    }

    /*//////////////////////////////////////////////////////////////
                                 SHARES
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IModelGovernor
    function onModelRegistered(uint256 modelId, address owner) external {
        if (msg.sender != address(registry)) revert Unauthorized(msg.sender);
        _move(modelId, address(0), owner, TOTAL_SHARES);
    }

    /// @inheritdoc IModelGovernor
    function transferShares(uint256 modelId, address to, uint256 amount) external {
        if (to == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        uint256 have = _shares[modelId][msg.sender];
        if (amount > have) revert InsufficientShares(have, amount);
        _move(modelId, msg.sender, to, amount);
    }

    /*//////////////////////////////////////////////////////////////
                               PROPOSALS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IModelGovernor
    function propose(uint256 modelId, Action action, uint256 value) external returns (uint256 proposalId) {
        if (!registry.exists(modelId)) revert UnknownModel(modelId);
        if (action == Action.SetLicensingOpen && value > 1) revert InvalidValue(value);
        if ((action == Action.SetPrice || action == Action.SetMinCollateral) && value > type(uint128).max) {
            revert InvalidValue(value);
        }
        if (action == Action.AcceptVersion && value >= registry.versionCount(modelId)) revert InvalidValue(value);
        uint48 snapshot = uint48(block.number - 1);
        uint256 votes = _votes[modelId][msg.sender].upperLookupRecent(snapshot);
        uint256 threshold = (TOTAL_SHARES * proposalThresholdBps) / BPS;
        // slither-disable-next-line incorrect-equality
        if (votes == 0 || votes < threshold) revert BelowProposalThreshold(votes, threshold);
        proposalId = nextProposalId++;
        uint64 voteEnd = uint64(block.timestamp + votingPeriod);
        _proposals[proposalId] = Proposal({
            modelId: modelId,
            value: value,
            action: action,
            executed: false,
            proposer: msg.sender,
            snapshotBlock: snapshot,
            voteEnd: voteEnd,
            forVotes: 0,
            againstVotes: 0
        });
        emit ProposalCreated(proposalId, modelId, msg.sender, action, value, snapshot, voteEnd);
    }

    /// @inheritdoc IModelGovernor
    function castVote(uint256 proposalId, bool support) external {
        Proposal storage p = _proposals[proposalId];
        if (p.proposer == address(0)) revert UnknownProposal(proposalId);
        if (_state(p) != ProposalState.Active) revert VotingClosed(proposalId);
        if (hasVoted[proposalId][msg.sender]) revert AlreadyVoted(proposalId, msg.sender);
        uint256 weight = _votes[p.modelId][msg.sender].upperLookupRecent(p.snapshotBlock);
        if (weight == 0) revert NoVotingPower(msg.sender);
        hasVoted[proposalId][msg.sender] = true;
        if (support) p.forVotes += weight;
        else p.againstVotes += weight;
        emit VoteCast(proposalId, msg.sender, support, weight);
    }

    /// @inheritdoc IModelGovernor
    function execute(uint256 proposalId) external {
        Proposal storage p = _proposals[proposalId];
        if (p.proposer == address(0)) revert UnknownProposal(proposalId);
        ProposalState s = _state(p);
        if (s != ProposalState.Succeeded) revert NotSucceeded(proposalId, s);
        p.executed = true;
        uint256 modelId = p.modelId;
        uint256 value = p.value;
        emit ProposalExecuted(proposalId, modelId);
        if (p.action == Action.SetPrice) registry.setPrice(modelId, uint128(value));
        else if (p.action == Action.SetMinCollateral) registry.setMinCollateral(modelId, uint128(value));
        else if (p.action == Action.SetLicensingOpen) registry.setLicensingOpen(modelId, value == 1);
        else registry.acceptVersion(modelId, value);
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    function sharesOf(uint256 modelId, address account) external view returns (uint256) {
        return _shares[modelId][account];
    }

    function getVotes(uint256 modelId, address account) external view returns (uint256) {
        return _votes[modelId][account].latest();
    }

    function getPastVotes(uint256 modelId, address account, uint256 blockNumber) external view returns (uint256) {
        if (blockNumber >= block.number) revert FutureLookup(blockNumber);
        return _votes[modelId][account].upperLookupRecent(blockNumber.toUint48());
    }

    function state(uint256 proposalId) external view returns (ProposalState) {
        Proposal storage p = _proposals[proposalId];
        if (p.proposer == address(0)) return ProposalState.None;
        return _state(p);
    }

    function getProposal(uint256 proposalId) external view returns (Proposal memory) {
        return _proposals[proposalId];
    }

    function quorum() public view returns (uint256) {
        return (TOTAL_SHARES * quorumBps) / BPS;
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    function _state(Proposal storage p) private view returns (ProposalState) {
        if (p.executed) return ProposalState.Executed;
        // An absolute majority cannot be overturned: executable at once.
        if (p.forVotes * 2 > TOTAL_SHARES) return ProposalState.Succeeded;
        if (block.timestamp <= p.voteEnd) return ProposalState.Active;
        if (p.forVotes >= quorum() && p.forVotes > p.againstVotes) return ProposalState.Succeeded;
        return ProposalState.Defeated;
    }

    /// @dev Accrue both sides' fee revenue at their old balances before the balances change.
    function _move(uint256 modelId, address from, address to, uint256 amount) private {
        uint256 fromBalance = from == address(0) ? 0 : _shares[modelId][from];
        uint256 toBalance = _shares[modelId][to];
        // The trusted, immutable router accrues both sides at their old balances first.
        // slither-disable-next-line reentrancy-no-eth
        router.onSharesTransfer(modelId, from, to, fromBalance, toBalance);
        uint48 now_ = uint48(block.number);
        if (from != address(0)) {
            _shares[modelId][from] = fromBalance - amount;
            // slither-disable-next-line unused-return
            _votes[modelId][from].push(now_, uint208(fromBalance - amount));
        }
        // Read again: `to` may be `from` (a self-transfer must not mint shares).
        uint256 newTo = _shares[modelId][to] + amount;
        _shares[modelId][to] = newTo;
        // slither-disable-next-line unused-return
        _votes[modelId][to].push(now_, uint208(newTo));
        emit SharesTransferred(modelId, from, to, amount);
    }

    function _setParams(uint64 votingPeriod_, uint16 quorumBps_, uint16 proposalThresholdBps_) private {
        if (votingPeriod_ == 0 || quorumBps_ == 0 || quorumBps_ > BPS || proposalThresholdBps_ > BPS) {
            revert BadParams();
        }
        votingPeriod = votingPeriod_;
        quorumBps = quorumBps_;
        proposalThresholdBps = proposalThresholdBps_;
        emit GovernanceParamsChanged(votingPeriod_, quorumBps_, proposalThresholdBps_);
    }
}
