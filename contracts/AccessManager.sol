// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IAccessManager} from "./interfaces/IAccessManager.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {IUsageLedger} from "./interfaces/IUsageLedger.sol";
import {IChallengeManager} from "./interfaces/IChallengeManager.sol";

/// @title AccessManager
/// @notice Licences, host collateral, exit and slashing (see IAccessManager for the states).
contract AccessManager is IAccessManager, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    /*//////////////////////////////////////////////////////////////
                                 STATE
    //////////////////////////////////////////////////////////////*/

    bytes32 public constant ORACLE_ROLE = keccak256("ORACLE_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    uint256 public constant PUBKEY_LENGTH = 64;

    IERC20 public immutable feeToken;
    IModelRegistry public immutable registry;
    IUsageLedger public immutable ledger;
    IChallengeManager public challengeManager;

    uint64 public exitDelay;
    uint64 public deliveryTimeout;
    bool public paused;

    uint256 public nextCopyId = 1;
    uint256 public totalCollateral;
    mapping(uint256 copyId => Copy) private _copies;

    address private _wirer;

    constructor(
        address admin,
        IERC20 feeToken_,
        IModelRegistry registry_,
        IUsageLedger ledger_,
        uint64 exitDelay_,
        uint64 deliveryTimeout_
    ) {
        if (
            admin == address(0) || address(feeToken_) == address(0) || address(registry_) == address(0)
                || address(ledger_) == address(0)
        ) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        feeToken = feeToken_;
        registry = registry_;
        ledger = ledger_;
        exitDelay = exitDelay_;
        deliveryTimeout = deliveryTimeout_;
        _wirer = msg.sender;
    }

    /// @notice Deployer only, once: the ChallengeManager; checks the exit delay against it.
    function wire(IChallengeManager challengeManager_) external {
        if (msg.sender != _wirer) revert AlreadyWired();
        if (address(challengeManager_) == address(0)) revert ZeroAddress();
        challengeManager = challengeManager_;
        _wirer = address(0);
        _checkExitDelay(exitDelay);
    }

    modifier onlyChallengeManager() {
        if (msg.sender != address(challengeManager)) revert Unauthorized(msg.sender);
        _;
    }

    modifier whenNotPaused() {
        if (paused) revert ProtocolPaused();
        _;
    }

    /*//////////////////////////////////////////////////////////////
                          GOVERNANCE (TIMELOCK)
    //////////////////////////////////////////////////////////////*/

    /// @notice The exit delay must exceed the longest challenge span (ChallengeManager).
    function setParams(uint64 exitDelay_, uint64 deliveryTimeout_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _checkExitDelay(exitDelay_);
        exitDelay = exitDelay_;
        deliveryTimeout = deliveryTimeout_;
        emit ParamsChanged(exitDelay_, deliveryTimeout_);
    }

    function setPaused(bool paused_) external {
        if (!hasRole(DEFAULT_ADMIN_ROLE, msg.sender) && !(paused_ && hasRole(PAUSER_ROLE, msg.sender))) {
            revert Unauthorized(msg.sender);
        }
        paused = paused_;
        emit PausedSet(paused_);
    }

    /*//////////////////////////////////////////////////////////////
                                 HOSTS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IAccessManager
    function requestAccess(
        uint256 modelId,
        uint256 version,
        string calldata endpoint,
        uint256 collateral,
        bytes calldata hostPubKey
    ) external nonReentrant whenNotPaused returns (uint256 copyId) {
        if (!ledger.isTokenAllowed(address(feeToken))) revert TokenNotAllowed(address(feeToken));
        if (!registry.exists(modelId)) revert UnknownModel(modelId);
        if (version >= registry.versionCount(modelId)) revert UnknownVersion(modelId, version);
        if (!registry.isVersionAccepted(modelId, version)) revert VersionNotAccepted(modelId, version);
        IModelRegistry.ModelInfo memory info = registry.modelInfo(modelId);
        if (!info.licensingOpen) revert LicensingPaused(modelId);
        if (collateral == 0) revert ZeroAmount();
        if (collateral < info.minCollateral) revert CollateralTooLow(collateral, info.minCollateral);
        if (bytes(endpoint).length == 0) revert EmptyEndpoint();
        if (hostPubKey.length != PUBKEY_LENGTH) revert BadPubKeyLength(hostPubKey.length);
        address derived = address(uint160(uint256(keccak256(hostPubKey))));
        if (derived != msg.sender) revert PubKeyMismatch(derived, msg.sender);

        copyId = nextCopyId++;
        _copies[copyId] = Copy({
            host: msg.sender,
            state: CopyState.Requested,
            modelId: modelId.toUint32(),
            version: version.toUint32(),
            fpCount: 0,
            openChallenges: 0,
            collateral: collateral.toUint128(),
            slashed: 0,
            requestedAt: uint64(block.timestamp),
            deliveredAt: 0,
            exitRequestedAt: 0,
            fpRoot: bytes32(0)
        });
        totalCollateral += collateral;
        emit AccessRequested(copyId, modelId, msg.sender, version, endpoint, collateral, hostPubKey);
        _pull(collateral);
    }

    /// @inheritdoc IAccessManager
    function deliverCopy(uint256 copyId, bytes32 fpRoot, uint256 fpCount, string calldata copyCID)
        external
        nonReentrant
    {
        if (!hasRole(ORACLE_ROLE, msg.sender)) revert NotOracle(msg.sender);
        Copy storage c = _copies[copyId];
        CopyState state = c.state;
        if (state == CopyState.None) revert UnknownCopy(copyId);
        if (state != CopyState.Requested) revert AlreadyDelivered(copyId);
        if (fpRoot == bytes32(0) || fpCount == 0) revert BadFingerprints();
        if (bytes(copyCID).length == 0) revert EmptyCID();
        c.state = CopyState.Active;
        c.fpRoot = fpRoot;
        c.fpCount = fpCount.toUint32();
        c.deliveredAt = uint64(block.timestamp);
        emit CopyDelivered(copyId, fpRoot, fpCount, copyCID);
        ledger.onCopyDelivered(copyId, c.host, c.modelId);
    }

    /// @inheritdoc IAccessManager
    function topUp(uint256 copyId, uint256 amount) external nonReentrant whenNotPaused {
        if (amount == 0) revert ZeroAmount();
        Copy storage c = _copies[copyId];
        CopyState state = c.state;
        if (state == CopyState.None) revert UnknownCopy(copyId);
        if (state != CopyState.Requested && state != CopyState.Active) revert WrongState(copyId, state);
        uint256 collateral = c.collateral + amount;
        c.collateral = collateral.toUint128();
        totalCollateral += amount;
        emit CollateralAdded(copyId, msg.sender, amount, collateral);
        _pull(amount);
    }

    /// @inheritdoc IAccessManager
    function requestExit(uint256 copyId) external {
        Copy storage c = _hostCopy(copyId);
        if (c.state != CopyState.Active) revert WrongState(copyId, c.state);
        _exit(copyId, c);
    }

    /// @inheritdoc IAccessManager
    function withdraw(uint256 copyId) external nonReentrant returns (uint256 amount) {
        Copy storage c = _hostCopy(copyId);
        if (c.state != CopyState.Exiting) revert WrongState(copyId, c.state);
        uint256 readyAt = uint256(c.exitRequestedAt) + exitDelay;
        if (block.timestamp < readyAt) revert ExitDelayNotOver(readyAt);
        if (c.openChallenges != 0) revert ChallengePending(copyId, c.openChallenges);
        amount = c.collateral;
        c.collateral = 0;
        c.state = CopyState.Withdrawn;
        totalCollateral -= amount;
        emit Withdrawn(copyId, msg.sender, amount);
        if (amount != 0) feeToken.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IAccessManager
    function cancelRequest(uint256 copyId) external nonReentrant returns (uint256 amount) {
        Copy storage c = _hostCopy(copyId);
        if (c.state != CopyState.Requested) revert WrongState(copyId, c.state);
        uint256 readyAt = uint256(c.requestedAt) + deliveryTimeout;
        if (block.timestamp < readyAt) revert DeliveryTimeoutNotOver(readyAt);
        amount = c.collateral;
        c.collateral = 0;
        c.state = CopyState.Withdrawn;
        totalCollateral -= amount;
        emit RequestCancelled(copyId, msg.sender, amount);
        feeToken.safeTransfer(msg.sender, amount);
    }

    /*//////////////////////////////////////////////////////////////
                           CHALLENGE MANAGER
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IAccessManager
    function slash(uint256 copyId, uint256 challengeId, uint256 amount, address challenger, uint256 reward)
        external
        onlyChallengeManager
        nonReentrant
    {
        Copy storage c = _copies[copyId];
        if (c.state != CopyState.Active && c.state != CopyState.Exiting) revert WrongState(copyId, c.state);
        uint256 collateral = c.collateral;
        if (amount > collateral || reward > amount) revert SlashTooLarge(amount, collateral);
        c.collateral = uint128(collateral - amount);
        c.slashed += uint128(amount);
        totalCollateral -= amount;
        emit Slashed(copyId, challengeId, amount, challenger, reward);
        if (amount != 0) {
            feeToken.safeTransfer(address(ledger), amount);
            ledger.creditSlash(c.modelId, challenger, reward, amount - reward);
        }
    }

    /// @inheritdoc IAccessManager
    function lockCopy(uint256 copyId) external onlyChallengeManager {
        ++_copies[copyId].openChallenges;
    }

    /// @inheritdoc IAccessManager
    function unlockCopy(uint256 copyId) external onlyChallengeManager {
        --_copies[copyId].openChallenges;
    }

    /// @inheritdoc IAccessManager
    function forceExit(uint256 copyId) external onlyChallengeManager {
        Copy storage c = _copies[copyId];
        if (c.state == CopyState.Active) _exit(copyId, c);
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    function getCopy(uint256 copyId) external view returns (Copy memory) {
        // slither-disable-next-line incorrect-equality
        if (_copies[copyId].state == CopyState.None) revert UnknownCopy(copyId);
        return _copies[copyId];
    }

    function isDelivered(uint256 copyId) external view returns (bool) {
        CopyState state = _copies[copyId].state;
        return state != CopyState.None && state != CopyState.Requested && _copies[copyId].fpRoot != bytes32(0);
    }

    function minCollateral(uint256 modelId) external view returns (uint256) {
        return registry.minCollateral(modelId);
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    function _hostCopy(uint256 copyId) private view returns (Copy storage c) {
        c = _copies[copyId];
        if (c.state == CopyState.None) revert UnknownCopy(copyId);
        if (c.host != msg.sender) revert NotHost(copyId, msg.sender);
    }

    function _exit(uint256 copyId, Copy storage c) private {
        c.state = CopyState.Exiting;
        c.exitRequestedAt = uint64(block.timestamp);
        emit ExitRequested(copyId, c.host, block.timestamp + exitDelay);
        ledger.onCopyExit(copyId);
    }

    function _checkExitDelay(uint256 delay) private view {
        if (address(challengeManager) == address(0)) return;
        uint256 span = challengeManager.maxChallengeSpan();
        if (delay <= span) revert ExitDelayTooShort(delay, span + 1);
    }

    function _pull(uint256 amount) private {
        uint256 before = feeToken.balanceOf(address(this));
        feeToken.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = feeToken.balanceOf(address(this)) - before;
        if (received != amount) revert FeeOnTransferToken(amount, received);
    }
}
