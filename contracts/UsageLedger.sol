// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {FeeRouter} from "./FeeRouter.sol";
import {IUsageLedger} from "./interfaces/IUsageLedger.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";

/// @title UsageLedger
/// @notice Per-copy, per-epoch usage reports paid in the fee token; routes fees (FeeRouter).
/// @dev `reportUsage` touches a fixed set of slots whatever the model's lineage: the copy
/// (host, model, first/end epoch), the report ring (next epoch + the last 4 lastSeqs), the
/// config slot (cuts + unsplit protocol fees), the model's lineage accumulator and the token.
contract UsageLedger is FeeRouter, IUsageLedger {
    using SafeCast for uint256;

    /// @notice Receipt seqs are stored in 48-bit lanes (2.8e14 calls per copy).
    uint256 public constant MAX_SEQ = type(uint48).max;
    /// @dev Set in every delivered copy's report word so that reports never write a zero slot.
    uint256 private constant LIVE = 1 << 255;
    /// @notice Epochs whose exact lastSeq is kept.
    uint256 public constant KEPT_EPOCHS = 4;

    struct CopySlot {
        address host;
        uint32 modelId;
        uint32 firstEpoch;
        uint32 endEpoch;
    }

    uint256 public immutable genesis;
    uint256 public immutable epochLength;

    mapping(uint256 copyId => CopySlot) private _copies;
    /// @dev bits 0..31: next epoch to report; lane k (k = epoch % 4): bits 32 + 48k .. +48;
    /// bit 255: LIVE.
    mapping(uint256 copyId => uint256) private _reports;

    constructor(
        address owner_,
        IERC20 feeToken_,
        IModelRegistry registry_,
        address treasury_,
        address infrastructure_,
        uint16 treasuryBps,
        uint16 proverPoolBps,
        uint16 infraBps,
        uint256 genesis_,
        uint256 epochLength_
    ) FeeRouter(owner_, feeToken_, registry_, treasury_, infrastructure_, treasuryBps, proverPoolBps, infraBps) {
        if (epochLength_ == 0 || epochLength_ > 30 days) revert BadEpochLength();
        genesis = genesis_ == 0 ? block.timestamp : genesis_;
        epochLength = epochLength_;
    }

    /*//////////////////////////////////////////////////////////////
                                EXTERNAL
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IUsageLedger
    function reportUsage(uint256 copyId, uint64 epoch, uint64 calls, uint64 lastSeq) external nonReentrant {
        Config memory c = _config;
        if (c.paused) revert ProtocolPaused();
        if (!c.tokenAllowed) revert TokenNotAllowed(address(_feeToken));
        CopySlot memory cp = _copies[copyId];
        if (cp.host == address(0)) revert UnknownCopy(copyId);
        if (cp.host != msg.sender) revert NotCopyHost(copyId, msg.sender);
        uint256 closesAt = genesis + (uint256(epoch) + 1) * epochLength;
        if (block.timestamp < closesAt) revert EpochNotClosed(epoch, closesAt);

        uint256 packed = _reports[copyId];
        uint256 next = uint32(packed);
        if (epoch < next) revert AlreadyReported(copyId, epoch);
        if (epoch != next) revert EpochOutOfOrder(epoch, next);
        if (epoch > cp.endEpoch) revert EpochAfterExit(epoch, cp.endEpoch);
        uint256 previous = _lane(packed, next + 3);
        if (lastSeq < previous) revert SeqWentBackwards(lastSeq, previous);
        if (lastSeq > MAX_SEQ) revert SeqTooLarge(lastSeq);
        if (calls != lastSeq - previous) revert CallsMismatch(calls, lastSeq - previous);

        uint256 shift = 32 + 48 * (epoch % KEPT_EPOCHS);
        packed = (packed & ~(uint256(type(uint48).max) << shift) & ~uint256(type(uint32).max))
            | (uint256(lastSeq) << shift) | (next + 1);
        _reports[copyId] = packed;

        uint256 fee = uint256(calls) * registry.pricePerCall(cp.modelId);
        if (fee != 0) {
            uint256 protocolCut = (fee * (uint256(c.treasuryBps) + c.proverPoolBps + c.infraBps)) / BPS;
            _config.protocolUnsplit = SafeCast.toUint184(c.protocolUnsplit + protocolCut);
            lineageAccrued[cp.modelId] += fee - protocolCut;
            _pull(fee);
        }
        emit UsageReported(copyId, epoch, calls, lastSeq, fee);
    }

    /*//////////////////////////////////////////////////////////////
                         HOOKS (ACCESS MANAGER)
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IUsageLedger
    function onCopyDelivered(uint256 copyId, address host, uint256 modelId) external onlyFrom(accessManager) {
        uint32 first = SafeCast.toUint32(currentEpoch());
        _copies[copyId] =
            CopySlot({host: host, modelId: modelId.toUint32(), firstEpoch: first, endEpoch: type(uint32).max});
        _reports[copyId] = LIVE | first;
    }

    /// @inheritdoc IUsageLedger
    function onCopyExit(uint256 copyId) external onlyFrom(accessManager) {
        _copies[copyId].endEpoch = SafeCast.toUint32(currentEpoch());
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    function feeToken() public view override(FeeRouter, IUsageLedger) returns (address) {
        return address(_feeToken);
    }

    function currentEpoch() public view returns (uint256) {
        return block.timestamp < genesis ? 0 : (block.timestamp - genesis) / epochLength;
    }

    function epochEnd(uint256 epoch) external view returns (uint256) {
        return genesis + (epoch + 1) * epochLength;
    }

    function pricePerCall(uint256 copyId) external view returns (uint256) {
        CopySlot memory cp = _copies[copyId];
        if (cp.host == address(0)) revert UnknownCopy(copyId);
        return registry.pricePerCall(cp.modelId);
    }

    function firstEpoch(uint256 copyId) external view returns (uint256) {
        CopySlot memory cp = _copies[copyId];
        if (cp.host == address(0)) revert UnknownCopy(copyId);
        return cp.firstEpoch;
    }

    function copyLedger(uint256 copyId) external view returns (CopyLedger memory info) {
        CopySlot memory cp = _copies[copyId];
        uint256 packed = _reports[copyId];
        info = CopyLedger({
            host: cp.host,
            modelId: cp.modelId,
            firstEpoch: cp.firstEpoch,
            endEpoch: cp.endEpoch,
            nextEpoch: uint32(packed),
            lastSeq: uint64(_lane(packed, uint32(packed) + 3))
        });
    }

    function getReport(uint256 copyId, uint256 epoch) external view returns (Report memory report) {
        CopySlot memory cp = _copies[copyId];
        uint256 packed = _reports[copyId];
        uint256 next = uint32(packed);
        if (cp.host == address(0) || epoch < cp.firstEpoch || epoch >= next) return report;
        report.reported = true;
        if (next - epoch > KEPT_EPOCHS) return report;
        uint256 seq = _lane(packed, epoch);
        report.lastSeq = uint64(seq);
        // slither-disable-next-line incorrect-equality
        if (epoch == cp.firstEpoch) {
            report.known = true;
            report.calls = uint64(seq);
        } else if (next - epoch < KEPT_EPOCHS) {
            report.known = true;
            report.calls = uint64(seq - _lane(packed, epoch - 1));
        }
    }

    function seqBound(uint256 copyId, uint256 epoch) external view returns (bool reported, uint256 bound) {
        CopySlot memory cp = _copies[copyId];
        uint256 packed = _reports[copyId];
        uint256 next = uint32(packed);
        if (cp.host == address(0) || epoch < cp.firstEpoch || epoch >= next) return (false, 0);
        reported = true;
        bound = next - epoch <= KEPT_EPOCHS ? _lane(packed, epoch) : _lane(packed, next + 3);
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    /// @dev The lastSeq stored for `epoch` (mod 4).
    function _lane(uint256 packed, uint256 epoch) private pure returns (uint256) {
        // slither-disable-next-line weak-prng
        return uint48(packed >> (32 + 48 * (epoch % KEPT_EPOCHS)));
    }
}
