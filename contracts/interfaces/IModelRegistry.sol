// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IModelRegistry
/// @notice Permanent record of OML models: one ERC-721 token per model, append-only versions.
interface IModelRegistry {
    /// @notice A version's content identifiers (IPFS CIDs as strings).
    struct Version {
        string weightsCID;
        string manifestCID;
        uint64 publishedAt;
    }

    /// @notice The model does not exist.
    error UnknownModel(uint256 modelId);
    /// @notice The caller is not the owner of the model token.
    error NotModelOwner(uint256 modelId, address caller);
    /// @notice A CID argument was empty.
    error EmptyCID();

    /// @notice Emitted when a model token is minted.
    event ModelRegistered(uint256 indexed modelId, address indexed owner, string manifestCID);
    /// @notice Emitted when a new version is appended to a model.
    event VersionPublished(
        uint256 indexed modelId, uint256 indexed version, string weightsCID, string manifestCID
    );

    /// @notice Mint a new root model owned by the caller.
    /// @param manifestCID CID of the model's manifest on IPFS.
    /// @return modelId The new token id.
    function registerModel(string calldata manifestCID) external returns (uint256 modelId);

    /// @notice Append a version; versions are never overwritten.
    /// @return version Index of the new version (0-based).
    function publishVersion(uint256 modelId, string calldata weightsCID, string calldata manifestCID)
        external
        returns (uint256 version);

    /// @notice Number of versions published for `modelId`.
    function versionCount(uint256 modelId) external view returns (uint256);

    /// @notice A published version of `modelId`.
    function getVersion(uint256 modelId, uint256 version) external view returns (Version memory);
}
