// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {IModelGovernor} from "./interfaces/IModelGovernor.sol";

/// @title ModelRegistry
/// @notice ERC-721 per model, append-only versions, family tree fixed at registration and a
/// royalty table flattened once so that paying a fee never walks the tree.
/// @dev No cycles by construction: parents must already exist, so they have lower ids.
contract ModelRegistry is ERC721, IModelRegistry {
    /*//////////////////////////////////////////////////////////////
                                CONSTANTS
    //////////////////////////////////////////////////////////////*/

    uint256 public constant MAX_PARENTS = 4;
    uint256 public constant MAX_ANCESTORS = 32;
    uint256 public constant MAX_DEPTH = 8;
    uint256 public constant BPS = 10_000;
    uint256 public constant PPB = 1e9;

    /*//////////////////////////////////////////////////////////////
                                 STATE
    //////////////////////////////////////////////////////////////*/

    /// @dev One-time wiring authority (the deployer); cleared by `setGovernor`.
    address private _wirer;
    IModelGovernor public governor;

    uint256 public nextModelId = 1;
    mapping(uint256 modelId => ModelInfo) private _models;
    mapping(uint256 modelId => Version[]) private _versions;
    mapping(uint256 modelId => uint256[]) private _parents;
    /// @dev Packed `(ancestorId << 32) | weightPpb`, self last.
    // slither-disable-next-line uninitialized-state
    mapping(uint256 modelId => uint64[]) private _lineage;

    constructor() ERC721("OML Model", "OML") {
        _wirer = msg.sender;
    }

    /// @notice Deployer only, once: the governor that owns per-model parameters.
    function setGovernor(address governor_) external {
        if (msg.sender != _wirer) revert AlreadyWired();
        if (governor_ == address(0)) revert ZeroAddress();
        governor = IModelGovernor(governor_);
        _wirer = address(0);
    }

    modifier onlyGovernor() {
        if (msg.sender != address(governor)) revert NotGovernor(msg.sender);
        _;
    }

    modifier known(uint256 modelId) {
        // slither-disable-next-line incorrect-equality
        if (_models[modelId].registeredAt == 0) revert UnknownModel(modelId);
        _;
    }

    /*//////////////////////////////////////////////////////////////
                                EXTERNAL
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IModelRegistry
    function registerModel(
        uint256[] calldata parents,
        uint16[] calldata shareBps,
        string calldata manifestCID,
        Terms calldata terms,
        uint16 maxRoyaltyStack
    ) external returns (uint256 modelId) {
        if (address(governor) == address(0)) revert NotWired();
        if (bytes(manifestCID).length == 0) revert EmptyCID();
        uint256 n = parents.length;
        if (n > MAX_PARENTS) revert TooManyParents(n, MAX_PARENTS);
        if (n != shareBps.length) revert LengthMismatch(n, shareBps.length);
        modelId = nextModelId++;

        Flat memory f = Flat(new uint256[](MAX_ANCESTORS), new uint256[](MAX_ANCESTORS), 0, 0, 0);
        for (uint256 j; j < n; ++j) {
            uint256 parent = parents[j];
            if (parent == modelId) revert SelfAncestry(parent);
            for (uint256 k; k < j; ++k) {
                if (parents[k] == parent) revert DuplicateParent(parent);
            }
            _merge(f, parent, shareBps[j]);
        }
        if (f.stack > BPS) revert RoyaltyStackTooHigh(f.stack, BPS);
        if (f.stack > maxRoyaltyStack) revert RoyaltyStackTooHigh(f.stack, maxRoyaltyStack);
        if (f.depth > MAX_DEPTH) revert DepthTooHigh(f.depth, MAX_DEPTH);

        uint64[] storage own = _lineage[modelId];
        uint256 given = 0;
        for (uint256 k; k < f.count; ++k) {
            given += f.weights[k];
            own.push(uint64((f.ids[k] << 32) | f.weights[k]));
        }
        own.push(uint64((modelId << 32) | (PPB - given)));

        _models[modelId] = ModelInfo({
            pricePerCall: terms.pricePerCall,
            minCollateral: terms.minCollateral,
            licensingOpen: true,
            depth: uint8(f.depth),
            royaltyStackBps: uint16(f.stack),
            ancestorCount: uint8(f.count),
            registeredAt: uint64(block.timestamp)
        });
        _parents[modelId] = parents;

        emit ModelRegistered(modelId, msg.sender, parents, shareBps, manifestCID);
        emit PriceChanged(modelId, terms.pricePerCall);
        emit MinCollateralChanged(modelId, terms.minCollateral);
        _mint(msg.sender, modelId);
        governor.onModelRegistered(modelId, msg.sender);
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
        bool first = version == 0;
        _versions[modelId].push(Version(weightsCID, manifestCID, uint64(block.timestamp), first));
        emit VersionPublished(modelId, version, weightsCID, manifestCID);
        if (first) emit VersionAccepted(modelId, 0);
    }

    /// @inheritdoc IModelRegistry
    function acceptVersion(uint256 modelId, uint256 version) external onlyGovernor known(modelId) {
        if (version >= _versions[modelId].length) revert UnknownVersion(modelId, version);
        _versions[modelId][version].accepted = true;
        emit VersionAccepted(modelId, version);
    }

    /// @inheritdoc IModelRegistry
    function setPrice(uint256 modelId, uint128 price) external onlyGovernor known(modelId) {
        _models[modelId].pricePerCall = price;
        emit PriceChanged(modelId, price);
    }

    /// @inheritdoc IModelRegistry
    function setMinCollateral(uint256 modelId, uint128 amount) external onlyGovernor known(modelId) {
        _models[modelId].minCollateral = amount;
        emit MinCollateralChanged(modelId, amount);
    }

    /// @inheritdoc IModelRegistry
    function setLicensingOpen(uint256 modelId, bool open) external onlyGovernor known(modelId) {
        _models[modelId].licensingOpen = open;
        emit LicensingChanged(modelId, open);
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    /// @dev Royalty table being built: distinct ancestors and their absolute weights (ppb).
    struct Flat {
        uint256[] ids;
        uint256[] weights;
        uint256 count;
        uint256 stack;
        uint256 depth;
    }

    /// @dev Fold `parent`'s table (itself included), scaled by `share` bps, into `f`.
    function _merge(Flat memory f, uint256 parent, uint256 share) private view {
        ModelInfo storage p = _models[parent];
        if (p.registeredAt == 0) revert UnknownModel(parent);
        if (share == 0) revert ZeroShare(parent);
        f.stack += share;
        if (p.depth + 1 > f.depth) f.depth = p.depth + 1;
        uint64[] storage table = _lineage[parent];
        uint256 len = table.length;
        for (uint256 t; t < len; ++t) {
            uint64 entry = table[t];
            uint256 id = entry >> 32;
            uint256 k;
            while (k < f.count && f.ids[k] != id) ++k;
            if (k == f.count) {
                if (k == MAX_ANCESTORS) revert TooManyAncestors(k + 1, MAX_ANCESTORS);
                f.ids[k] = id;
                ++f.count;
            }
            f.weights[k] += (uint256(uint32(entry)) * share) / BPS;
        }
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    function exists(uint256 modelId) external view returns (bool) {
        return _models[modelId].registeredAt != 0;
    }

    function modelInfo(uint256 modelId) external view known(modelId) returns (ModelInfo memory) {
        return _models[modelId];
    }

    function pricePerCall(uint256 modelId) external view returns (uint256) {
        return _models[modelId].pricePerCall;
    }

    function minCollateral(uint256 modelId) external view returns (uint256) {
        return _models[modelId].minCollateral;
    }

    function versionCount(uint256 modelId) external view returns (uint256) {
        return _versions[modelId].length;
    }

    function getVersion(uint256 modelId, uint256 version) external view known(modelId) returns (Version memory) {
        if (version >= _versions[modelId].length) revert UnknownVersion(modelId, version);
        return _versions[modelId][version];
    }

    function isVersionAccepted(uint256 modelId, uint256 version) external view returns (bool) {
        return version < _versions[modelId].length && _versions[modelId][version].accepted;
    }

    function parentsOf(uint256 modelId) external view returns (uint256[] memory) {
        return _parents[modelId];
    }

    function lineageTable(uint256 modelId) external view returns (uint64[] memory) {
        return _lineage[modelId];
    }

    function lineageOf(uint256 modelId) external view returns (uint256[] memory ids, uint256[] memory weightsPpb) {
        uint64[] storage table = _lineage[modelId];
        uint256 len = table.length;
        ids = new uint256[](len);
        weightsPpb = new uint256[](len);
        for (uint256 i; i < len; ++i) {
            ids[i] = table[i] >> 32;
            weightsPpb[i] = uint32(table[i]);
        }
    }
}
