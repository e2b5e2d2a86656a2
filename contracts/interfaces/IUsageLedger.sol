// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IFeeRouter} from "./IFeeRouter.sol";

/// @title IUsageLedger
/// @notice Per-copy, per-epoch usage reports paid in the fee token.
/// Epoch `e` covers `[genesis + e*epochLength, genesis + (e+1)*epochLength)`.
/// A copy reports every epoch from its `firstEpoch` (the epoch of delivery) to its `endEpoch`
/// (the epoch of its exit request) in order. Receipt `seq` numbers are per copy, start at 1 and
/// never repeat, so `lastSeq` is the highest seq issued by the end of the epoch and
/// `calls == lastSeq - previous lastSeq` (every seq is a paid call). The fee is
/// `calls × pricePerCall(model)`, pulled with `transferFrom` from the host (approve this
/// contract). The exact `lastSeq` of the last 4 reported epochs is kept for receipt challenges.
interface IUsageLedger is IFeeRouter {
    /// @notice A report as stored; `known` is false when calls/lastSeq are no longer kept.
    struct Report {
        bool reported;
        bool known;
        uint64 calls;
        uint64 lastSeq;
    }

    /// @notice Per-copy schedule as the ledger knows it.
    struct CopyLedger {
        address host;
        uint32 modelId;
        uint32 firstEpoch;
        uint32 endEpoch;
        uint32 nextEpoch;
        uint64 lastSeq;
    }

    error UnknownCopy(uint256 copyId);
    error NotCopyHost(uint256 copyId, address caller);
    error EpochNotClosed(uint256 epoch, uint256 closesAt);
    error AlreadyReported(uint256 copyId, uint256 epoch);
    error EpochOutOfOrder(uint256 epoch, uint256 expected);
    error EpochAfterExit(uint256 epoch, uint256 endEpoch);
    error SeqWentBackwards(uint256 lastSeq, uint256 previous);
    error CallsMismatch(uint256 calls, uint256 expected);
    error SeqTooLarge(uint256 lastSeq);
    error BadEpochLength();

    /// @notice `fee` = calls × price was paid for `epoch` of `copyId`.
    event UsageReported(uint256 indexed copyId, uint64 indexed epoch, uint64 calls, uint64 lastSeq, uint256 fee);

    /// @notice Report and pay one closed epoch of a copy (its host only).
    function reportUsage(uint256 copyId, uint64 epoch, uint64 calls, uint64 lastSeq) external;

    function genesis() external view returns (uint256);
    function epochLength() external view returns (uint256);
    function currentEpoch() external view returns (uint256);
    function epochEnd(uint256 epoch) external view returns (uint256);
    function feeToken() external view returns (address);
    function pricePerCall(uint256 copyId) external view returns (uint256);
    function firstEpoch(uint256 copyId) external view returns (uint256);
    function getReport(uint256 copyId, uint256 epoch) external view returns (Report memory);
    function copyLedger(uint256 copyId) external view returns (CopyLedger memory);
    /// @notice The bound a receipt of `epoch` must not exceed: the exact lastSeq of the epoch
    /// while kept, else the lastSeq of the latest report (seqs up to it are paid).
    function seqBound(uint256 copyId, uint256 epoch) external view returns (bool reported, uint256 bound);

    // ---- hooks (AccessManager only) ----
    function onCopyDelivered(uint256 copyId, address host, uint256 modelId) external;
    function onCopyExit(uint256 copyId) external;
}
