// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IFeeRouter
/// @notice Fee split and pull payments. Every fee is split into a protocol part (treasury,
/// prover pool, infrastructure, in bps of the fee) and a lineage part. The lineage part is
/// accumulated per model in O(1); `settleLineage` later pushes it through the model's flattened
/// royalty table (≤ 33 entries) into per-model reward-per-share accumulators; share holders
/// `harvest` into their claimable balance and `claim` tokens. Rounding dust is counted and
/// swept to the treasury, never lost.
/// @dev Implemented by UsageLedger (FeeRouter is its abstract base, same address).
interface IFeeRouter {
    error ZeroAmount();
    error ZeroAddress();
    error InsufficientClaimable(uint256 have, uint256 want);
    error CutsTooHigh(uint256 totalBps, uint256 maxBps);
    error Unauthorized(address caller);
    error AlreadyWired();
    error TokenNotAllowed(address token);
    error FeeOnTransferToken(uint256 expected, uint256 received);
    error ProtocolPaused();

    /// @notice Tokens moved from the protocol to `account`.
    event Claimed(address indexed account, uint256 amount);
    /// @notice `account`'s claimable balance grew by `amount`.
    event Credited(address indexed account, uint256 amount);
    /// @notice `amount` of model `modelId`'s lineage revenue was pushed through its table.
    event LineageSettled(uint256 indexed modelId, uint256 amount, uint256 dust);
    /// @notice Slashed collateral arrived: `reward` to the challenger, the rest to the lineage.
    event SlashCredited(uint256 indexed modelId, address indexed challenger, uint256 reward, uint256 toLineage);
    event ProtocolFeesSplit(uint256 treasury, uint256 proverPool, uint256 infrastructure);
    event DustSwept(address indexed treasury, uint256 amount);
    event CutsChanged(uint16 treasuryBps, uint16 proverPoolBps, uint16 infraBps);
    event RecipientsChanged(address treasury, address infrastructure);
    event TokenAllowed(address indexed token, bool allowed);
    event PausedSet(bool paused);

    /// @notice Push model `modelId`'s unsettled lineage revenue to its ancestors and itself.
    function settleLineage(uint256 modelId) external;
    /// @notice Move `holder`'s share of model `modelId`'s revenue into its claimable balance.
    function harvest(uint256 modelId, address holder) external returns (uint256 amount);
    /// @notice Move `prover`'s share of the prover pool into its claimable balance.
    function harvestProver(address prover) external returns (uint256 amount);
    /// @notice Split the accumulated protocol cut into treasury / prover pool / infrastructure.
    function splitProtocolFees() external;
    /// @notice Transfer `amount` of the caller's claimable balance to the caller.
    function claim(uint256 amount) external;
    /// @notice Transfer the caller's whole claimable balance to the caller.
    function claimAll() external returns (uint256 amount);
    /// @notice Credit the accumulated rounding dust to the treasury.
    function sweepDust() external returns (uint256 amount);

    function claimable(address account) external view returns (uint256);
    function treasury() external view returns (address);
    /// @notice Cumulative amounts credited to / claimed by `account` (claimed ≤ accrued).
    function accounting(address account) external view returns (uint256 accrued, uint256 claimed);
    /// @notice What `holder` could harvest from `modelId` now (settled revenue only).
    function pendingShareRevenue(uint256 modelId, address holder) external view returns (uint256);
    function isTokenAllowed(address token) external view returns (bool);

    // ---- hooks (protocol contracts only) ----
    function onSharesTransfer(uint256 modelId, address from, address to, uint256 fromBalance, uint256 toBalance)
        external;
    function creditSlash(uint256 modelId, address challenger, uint256 reward, uint256 toLineage) external;
    function creditAccount(address account, uint256 amount) external;
    function onProverJoined(address prover) external;
    function onProverLeft(address prover) external;
}
