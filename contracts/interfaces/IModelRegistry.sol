// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IModelRegistry
/// @notice Permanent record of OML models: one ERC-721 token per model, append-only versions,
/// a family tree fixed at registration and a flattened royalty table.
/// @dev Lineage weights are parts per billion (`PPB = 1e9`) of the model's lineage revenue.
/// `lineageTable(modelId)` returns packed `uint64` entries `(ancestorId << 32) | weightPpb`,
/// ancestors first and the model itself last (its own share = PPB - sum of the others).
interface IModelRegistry {
    /// @notice A version's content identifiers (IPFS CIDs as strings).
    struct Version {
        string weightsCID;
        string manifestCID;
        uint64 publishedAt;
        bool accepted;
    }

    /// @notice Economic terms chosen at registration (later changed by the model's governance).
    struct Terms {
        uint128 pricePerCall;
        uint128 minCollateral;
    }

    /// @notice Per-model state.
    struct ModelInfo {
        uint128 pricePerCall;
        uint128 minCollateral;
        bool licensingOpen;
        uint8 depth;
        uint16 royaltyStackBps;
        uint8 ancestorCount;
        uint64 registeredAt;
    }

    error UnknownModel(uint256 modelId);
    error NotModelOwner(uint256 modelId, address caller);
    error EmptyCID();
    error TooManyParents(uint256 count, uint256 max);
    error TooManyAncestors(uint256 count, uint256 max);
    error DepthTooHigh(uint256 depth, uint256 max);
    error DuplicateParent(uint256 parentId);
    error SelfAncestry(uint256 modelId);
    error LengthMismatch(uint256 parents, uint256 shares);
    error ZeroShare(uint256 parentId);
    error RoyaltyStackTooHigh(uint256 stackBps, uint256 maxBps);
    error UnknownVersion(uint256 modelId, uint256 version);
    error NotGovernor(address caller);
    error AlreadyWired();
    error NotWired();
    error ZeroAddress();

    /// @notice A model token was minted (root when `parents` is empty); its initial terms
    /// follow as `PriceChanged` and `MinCollateralChanged` in the same transaction.
    event ModelRegistered(
        uint256 indexed modelId, address indexed owner, uint256[] parents, uint16[] shareBps, string manifestCID
    );
    /// @notice A version was appended to a model (version 0 is accepted on publication).
    event VersionPublished(
        uint256 indexed modelId, uint256 indexed version, string weightsCID, string manifestCID
    );
    /// @notice The model's governance accepted `version` for licensing.
    event VersionAccepted(uint256 indexed modelId, uint256 indexed version);
    event PriceChanged(uint256 indexed modelId, uint256 pricePerCall);
    event MinCollateralChanged(uint256 indexed modelId, uint256 minCollateral);
    event LicensingChanged(uint256 indexed modelId, bool open);

    /// @notice Mint a root (no parents) or derivative model owned by the caller.
    /// @param parents Existing models this one derives from (≤ 4, no duplicates).
    /// @param shareBps Per parent, the share (bps) of this model's lineage revenue paid up to it.
    /// @param manifestCID CID of the model's manifest on IPFS.
    /// @param terms Initial price per call and minimum host collateral.
    /// @param maxRoyaltyStack Revert if the parents' shares sum to more than this (bps).
    /// @return modelId The new token id (ids start at 1).
    function registerModel(
        uint256[] calldata parents,
        uint16[] calldata shareBps,
        string calldata manifestCID,
        Terms calldata terms,
        uint16 maxRoyaltyStack
    ) external returns (uint256 modelId);

    /// @notice Append a version (token owner only); versions are never overwritten.
    /// @return version Index of the new version (0-based).
    function publishVersion(uint256 modelId, string calldata weightsCID, string calldata manifestCID)
        external
        returns (uint256 version);

    /// @notice Governance: accept `version` for licensing.
    function acceptVersion(uint256 modelId, uint256 version) external;
    /// @notice Governance: set the price per call (fee token units).
    function setPrice(uint256 modelId, uint128 pricePerCall) external;
    /// @notice Governance: set the minimum host collateral for new licences.
    function setMinCollateral(uint256 modelId, uint128 minCollateral) external;
    /// @notice Governance: open or pause new licences.
    function setLicensingOpen(uint256 modelId, bool open) external;

    function exists(uint256 modelId) external view returns (bool);
    function modelInfo(uint256 modelId) external view returns (ModelInfo memory);
    function pricePerCall(uint256 modelId) external view returns (uint256);
    function minCollateral(uint256 modelId) external view returns (uint256);
    function versionCount(uint256 modelId) external view returns (uint256);
    function getVersion(uint256 modelId, uint256 version) external view returns (Version memory);
    function isVersionAccepted(uint256 modelId, uint256 version) external view returns (bool);
    function parentsOf(uint256 modelId) external view returns (uint256[] memory);
    /// @notice Packed flattened royalty table, see the contract-level note.
    function lineageTable(uint256 modelId) external view returns (uint64[] memory);
    /// @notice Flattened royalty table unpacked: ancestor ids (self last) and weights in ppb.
    function lineageOf(uint256 modelId)
        external
        view
        returns (uint256[] memory ids, uint256[] memory weightsPpb);
}
