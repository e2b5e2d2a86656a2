// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IAccessManager
/// @notice Licences ("copies"): a host stakes collateral and asks for a fingerprinted copy of a
/// model version; the oracle delivers it with a Merkle root over its fingerprints. Leaves are
/// `keccak256(bytes.concat(keccak256(abi.encode(copyId, index, keccak256(key),
/// keccak256(response), salt))))` in an OpenZeppelin MerkleProof tree (sorted pairs).
/// Copy states: Requested → Active (delivered) → Exiting (exit requested) → Withdrawn;
/// Requested → Withdrawn by `cancelRequest` after the delivery timeout. Collateral stays
/// slashable until withdrawn; `withdraw` needs the exit delay elapsed and no open challenge.
interface IAccessManager {
    enum CopyState {
        None,
        Requested,
        Active,
        Exiting,
        Withdrawn
    }

    struct Copy {
        address host;
        CopyState state;
        uint32 modelId;
        uint32 version;
        uint32 fpCount;
        uint16 openChallenges;
        uint128 collateral;
        uint128 slashed;
        uint64 requestedAt;
        uint64 deliveredAt;
        uint64 exitRequestedAt;
        bytes32 fpRoot;
    }

    error ZeroAmount();
    error ZeroAddress();
    error UnknownCopy(uint256 copyId);
    error UnknownModel(uint256 modelId);
    error UnknownVersion(uint256 modelId, uint256 version);
    error VersionNotAccepted(uint256 modelId, uint256 version);
    error LicensingPaused(uint256 modelId);
    error CollateralTooLow(uint256 have, uint256 need);
    error BadPubKeyLength(uint256 length);
    error PubKeyMismatch(address derived, address caller);
    error EmptyEndpoint();
    error EmptyCID();
    error NotHost(uint256 copyId, address caller);
    error NotOracle(address caller);
    error AlreadyDelivered(uint256 copyId);
    error BadFingerprints();
    error WrongState(uint256 copyId, CopyState state);
    error ExitDelayNotOver(uint256 readyAt);
    error DeliveryTimeoutNotOver(uint256 readyAt);
    error ChallengePending(uint256 copyId, uint256 open);
    error SlashTooLarge(uint256 amount, uint256 collateral);
    error Unauthorized(address caller);
    error AlreadyWired();
    error ProtocolPaused();
    error TokenNotAllowed(address token);
    error FeeOnTransferToken(uint256 expected, uint256 received);
    error ExitDelayTooShort(uint256 exitDelay, uint256 minimum);

    /// @notice A host asked for a copy; the oracle encrypts it to `hostPubKey` (64 bytes, x‖y).
    event AccessRequested(
        uint256 indexed copyId,
        uint256 indexed modelId,
        address indexed host,
        uint256 version,
        string endpoint,
        uint256 collateral,
        bytes hostPubKey
    );
    /// @notice The oracle delivered the copy (encrypted, at `copyCID`) and committed to it.
    event CopyDelivered(uint256 indexed copyId, bytes32 fpRoot, uint256 fpCount, string copyCID);
    event CollateralAdded(uint256 indexed copyId, address indexed from, uint256 amount, uint256 collateral);
    event ExitRequested(uint256 indexed copyId, address indexed host, uint256 withdrawableAt);
    event Withdrawn(uint256 indexed copyId, address indexed host, uint256 amount);
    event RequestCancelled(uint256 indexed copyId, address indexed host, uint256 amount);
    /// @notice Collateral was slashed by challenge `challengeId`.
    event Slashed(
        uint256 indexed copyId, uint256 indexed challengeId, uint256 amount, address challenger, uint256 reward
    );
    event ParamsChanged(uint64 exitDelay, uint64 deliveryTimeout);
    event PausedSet(bool paused);

    function requestAccess(
        uint256 modelId,
        uint256 version,
        string calldata endpoint,
        uint256 collateral,
        bytes calldata hostPubKey
    ) external returns (uint256 copyId);
    /// @notice Oracle only: deliver a requested copy once.
    function deliverCopy(uint256 copyId, bytes32 fpRoot, uint256 fpCount, string calldata copyCID) external;
    /// @notice Add collateral to a Requested or Active copy (anyone may pay).
    function topUp(uint256 copyId, uint256 amount) external;
    /// @notice Host: stop licensing; collateral stays slashable for `exitDelay`.
    function requestExit(uint256 copyId) external;
    /// @notice Host: take the remaining collateral back after the exit delay.
    function withdraw(uint256 copyId) external returns (uint256 amount);
    /// @notice Host: cancel an undelivered request after the delivery timeout.
    function cancelRequest(uint256 copyId) external returns (uint256 amount);

    function getCopy(uint256 copyId) external view returns (Copy memory);
    function isDelivered(uint256 copyId) external view returns (bool);
    function minCollateral(uint256 modelId) external view returns (uint256);
    function exitDelay() external view returns (uint64);
    function totalCollateral() external view returns (uint256);
    function nextCopyId() external view returns (uint256);

    // ---- ChallengeManager only ----
    function slash(uint256 copyId, uint256 challengeId, uint256 amount, address challenger, uint256 reward)
        external;
    function lockCopy(uint256 copyId) external;
    function unlockCopy(uint256 copyId) external;
    function forceExit(uint256 copyId) external;
}
