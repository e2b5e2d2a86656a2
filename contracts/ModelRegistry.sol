// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";

/// @title ModelRegistry
/// @notice ERC-721 per model with an append-only list of versions (weights + manifest CIDs).
contract ModelRegistry is ERC721, IModelRegistry {
    /*//////////////////////////////////////////////////////////////
                                 STATE
    //////////////////////////////////////////////////////////////*/

    uint256 public nextModelId = 1;
    mapping(uint256 modelId => Version[]) private _versions;

    constructor() ERC721("OML Model", "OML") {}

    /*//////////////////////////////////////////////////////////////
                                EXTERNAL
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IModelRegistry
    function registerModel(string calldata manifestCID) external returns (uint256 modelId) {
        if (bytes(manifestCID).length == 0) revert EmptyCID();
        modelId = nextModelId++;
        _safeMint(msg.sender, modelId);
        emit ModelRegistered(modelId, msg.sender, manifestCID);
    }

    /// @inheritdoc IModelRegistry
    function publishVersion(uint256 modelId, string calldata weightsCID, string calldata manifestCID)
        external
        returns (uint256 version)
    {
        address owner = _ownerOf(modelId);
        if (owner == address(0)) revert UnknownModel(modelId);
        if (owner != msg.sender) revert NotModelOwner(modelId, msg.sender);
        if (bytes(weightsCID).length == 0 || bytes(manifestCID).length == 0) revert EmptyCID();
        version = _versions[modelId].length;
        _versions[modelId].push(Version(weightsCID, manifestCID, uint64(block.timestamp)));
        emit VersionPublished(modelId, version, weightsCID, manifestCID);
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IModelRegistry
    function versionCount(uint256 modelId) external view returns (uint256) {
        return _versions[modelId].length;
    }

    /// @inheritdoc IModelRegistry
    function getVersion(uint256 modelId, uint256 version) external view returns (Version memory) {
        if (_ownerOf(modelId) == address(0)) revert UnknownModel(modelId);
        return _versions[modelId][version];
    }
}
