// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IFeeRouter} from "./interfaces/IFeeRouter.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {IModelGovernor} from "./interfaces/IModelGovernor.sol";

/// @title FeeRouter
/// @notice Fee split, lazy lineage accumulators and pull claims (abstract base of UsageLedger).
/// @dev Money paths, all O(1) except `settleLineage` (bounded by the 33-entry royalty table):
/// fee → `_config.protocolUnsplit` (protocol cut) + `lineageAccrued[model]` (rest);
/// `settleLineage(model)` → `accPerShare[ancestor]` for each table entry (+ rounding dust);
/// `harvest(model, holder)` → `claimable[holder]`; `claim` → tokens.
/// Share supply is fixed at 1e18 per model, so `accPerShare` is "token units per whole model".
abstract contract FeeRouter is IFeeRouter, Ownable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /*//////////////////////////////////////////////////////////////
                                CONSTANTS
    //////////////////////////////////////////////////////////////*/

    uint256 public constant BPS = 10_000;
    uint256 public constant PPB = 1e9;
    uint256 public constant TOTAL_SHARES = 1e18;
    /// @notice The protocol's cuts together never take more than 30% of a fee.
    uint256 public constant MAX_PROTOCOL_BPS = 3_000;

    /*//////////////////////////////////////////////////////////////
                                 STATE
    //////////////////////////////////////////////////////////////*/

    /// @dev One slot read on every report: cuts, pause, token allow-listed, unsplit protocol fees.
    struct Config {
        uint16 treasuryBps;
        uint16 proverPoolBps;
        uint16 infraBps;
        bool paused;
        bool tokenAllowed;
        uint184 protocolUnsplit;
    }

    IERC20 internal immutable _feeToken;
    IModelRegistry public immutable registry;

    Config internal _config;
    address public accessManager;
    address public challengeManager;
    IModelGovernor public governor;
    address public treasury;
    address public infrastructure;

    mapping(address token => bool) private _allowedTokens;

    mapping(uint256 modelId => uint256) public lineageAccrued;
    mapping(uint256 modelId => uint256) public lineageSettled;
    mapping(uint256 modelId => uint256) public accPerShare;
    /// @notice Settled revenue of a model not yet harvested by its holders.
    mapping(uint256 modelId => uint256) public modelOutstanding;
    mapping(uint256 modelId => mapping(address holder => uint256)) private _holderSnap;

    mapping(address account => uint256) public claimable;
    /// @dev Cumulative credits; claimed = accrued - claimable (so claimed ≤ accrued by construction).
    mapping(address account => uint256) private _accrued;

    uint256 public proverPool;
    uint256 public proverOutstanding;
    uint256 public accPerProver;
    uint256 public proverCount;
    mapping(address prover => uint256) private _proverSnap;
    mapping(address prover => bool) private _proverActive;

    uint256 public dust;

    constructor(
        address owner_,
        IERC20 feeToken_,
        IModelRegistry registry_,
        address treasury_,
        address infrastructure_,
        uint16 treasuryBps,
        uint16 proverPoolBps,
        uint16 infraBps
    ) Ownable(owner_) {
        if (
            address(feeToken_) == address(0) || address(registry_) == address(0) || treasury_ == address(0)
                || infrastructure_ == address(0)
        ) revert ZeroAddress();
        _feeToken = feeToken_;
        registry = registry_;
        treasury = treasury_;
        infrastructure = infrastructure_;
        _setCuts(treasuryBps, proverPoolBps, infraBps);
    }

    /// @notice Owner (the deployer, before hand-over to the timelock), once: hook callers.
    function wire(address accessManager_, address challengeManager_, address governor_) external onlyOwner {
        if (accessManager != address(0)) revert AlreadyWired();
        if (accessManager_ == address(0) || challengeManager_ == address(0) || governor_ == address(0)) {
            revert ZeroAddress();
        }
        accessManager = accessManager_;
        challengeManager = challengeManager_;
        governor = IModelGovernor(governor_);
    }

    modifier onlyFrom(address caller) {
        if (msg.sender != caller) revert Unauthorized(msg.sender);
        _;
    }

    /*//////////////////////////////////////////////////////////////
                          GOVERNANCE (TIMELOCK)
    //////////////////////////////////////////////////////////////*/

    function setCuts(uint16 treasuryBps, uint16 proverPoolBps, uint16 infraBps) external onlyOwner {
        _splitProtocol();
        _setCuts(treasuryBps, proverPoolBps, infraBps);
    }

    function setRecipients(address treasury_, address infrastructure_) external onlyOwner {
        if (treasury_ == address(0) || infrastructure_ == address(0)) revert ZeroAddress();
        _splitProtocol();
        treasury = treasury_;
        infrastructure = infrastructure_;
        emit RecipientsChanged(treasury_, infrastructure_);
    }

    /// @notice Allow-list a fee token; the protocol settles in `feeToken` only while it is listed.
    function setTokenAllowed(address token, bool allowed) external onlyOwner {
        if (token == address(0)) revert ZeroAddress();
        _allowedTokens[token] = allowed;
        if (token == address(_feeToken)) _config.tokenAllowed = allowed;
        emit TokenAllowed(token, allowed);
    }

    function setPaused(bool paused_) external onlyOwner {
        _config.paused = paused_;
        emit PausedSet(paused_);
    }

    /*//////////////////////////////////////////////////////////////
                               SETTLEMENT
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IFeeRouter
    function settleLineage(uint256 modelId) public {
        uint256 accrued = lineageAccrued[modelId];
        uint256 delta = accrued - lineageSettled[modelId];
        if (delta == 0) return;
        lineageSettled[modelId] = accrued;
        uint64[] memory table = registry.lineageTable(modelId);
        uint256 given = 0;
        uint256 len = table.length;
        for (uint256 i; i < len; ++i) {
            uint256 id = table[i] >> 32;
            uint256 amount = (delta * uint32(table[i])) / PPB;
            if (amount == 0) continue;
            given += amount;
            accPerShare[id] += amount;
            modelOutstanding[id] += amount;
        }
        uint256 rest = delta - given;
        dust += rest;
        emit LineageSettled(modelId, delta, rest);
    }

    /// @inheritdoc IFeeRouter
    function harvest(uint256 modelId, address holder) external nonReentrant returns (uint256 amount) {
        settleLineage(modelId);
        amount = _accrueHolder(modelId, holder, governor.sharesOf(modelId, holder));
    }

    /// @inheritdoc IFeeRouter
    function harvestProver(address prover) external nonReentrant returns (uint256 amount) {
        _splitProtocol();
        amount = _accrueProver(prover);
    }

    /// @inheritdoc IFeeRouter
    function splitProtocolFees() external nonReentrant {
        _splitProtocol();
    }

    /// @inheritdoc IFeeRouter
    function sweepDust() external nonReentrant returns (uint256 amount) {
        amount = dust;
        if (amount == 0) revert ZeroAmount();
        dust = 0;
        _credit(treasury, amount);
        emit DustSwept(treasury, amount);
    }

    /*//////////////////////////////////////////////////////////////
                                 CLAIMS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IFeeRouter
    function claim(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint256 have = claimable[msg.sender];
        if (amount > have) revert InsufficientClaimable(have, amount);
        _pay(msg.sender, have, amount);
    }

    /// @inheritdoc IFeeRouter
    function claimAll() external nonReentrant returns (uint256 amount) {
        amount = claimable[msg.sender];
        if (amount == 0) revert InsufficientClaimable(0, 1);
        _pay(msg.sender, amount, amount);
    }

    /*//////////////////////////////////////////////////////////////
                                 HOOKS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IFeeRouter
    function onSharesTransfer(uint256 modelId, address from, address to, uint256 fromBalance, uint256 toBalance)
        external
        onlyFrom(address(governor))
    {
        settleLineage(modelId);
        if (from != address(0)) _accrueHolder(modelId, from, fromBalance);
        _accrueHolder(modelId, to, toBalance);
    }

    /// @inheritdoc IFeeRouter
    function creditSlash(uint256 modelId, address challenger, uint256 reward, uint256 toLineage)
        external
        onlyFrom(accessManager)
    {
        if (reward != 0) _credit(challenger, reward);
        lineageAccrued[modelId] += toLineage;
        emit SlashCredited(modelId, challenger, reward, toLineage);
    }

    /// @inheritdoc IFeeRouter
    function creditAccount(address account, uint256 amount) external onlyFrom(challengeManager) {
        _credit(account, amount);
    }

    /// @inheritdoc IFeeRouter
    function onProverJoined(address prover) external onlyFrom(challengeManager) {
        _splitProtocol();
        _proverSnap[prover] = accPerProver;
        _proverActive[prover] = true;
        ++proverCount;
    }

    /// @inheritdoc IFeeRouter
    function onProverLeft(address prover) external onlyFrom(challengeManager) {
        _splitProtocol();
        _accrueProver(prover);
        _proverActive[prover] = false;
        --proverCount;
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    function feeToken() public view virtual returns (address) {
        return address(_feeToken);
    }

    function isTokenAllowed(address token) external view returns (bool) {
        return _allowedTokens[token];
    }

    function accounting(address account) external view returns (uint256 accrued, uint256 claimed) {
        return (_accrued[account], _accrued[account] - claimable[account]);
    }

    function pendingShareRevenue(uint256 modelId, address holder) external view returns (uint256) {
        uint256 balance = governor.sharesOf(modelId, holder);
        return (balance * (accPerShare[modelId] - _holderSnap[modelId][holder])) / TOTAL_SHARES;
    }

    /// @notice Cuts (bps), pause flags and the protocol cut not yet split.
    function config() external view returns (Config memory) {
        return _config;
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    function _setCuts(uint16 treasuryBps, uint16 proverPoolBps, uint16 infraBps) internal {
        uint256 total = uint256(treasuryBps) + proverPoolBps + infraBps;
        if (total > MAX_PROTOCOL_BPS) revert CutsTooHigh(total, MAX_PROTOCOL_BPS);
        _config.treasuryBps = treasuryBps;
        _config.proverPoolBps = proverPoolBps;
        _config.infraBps = infraBps;
        emit CutsChanged(treasuryBps, proverPoolBps, infraBps);
    }

    /// @dev Split the unsplit protocol cut by the current cuts; hand the prover pool out per
    /// registered prover (the remainder stays in the pool).
    function _splitProtocol() internal {
        Config memory c = _config;
        uint256 unsplit = c.protocolUnsplit;
        if (unsplit != 0) {
            uint256 total = uint256(c.treasuryBps) + c.proverPoolBps + c.infraBps;
            uint256 toTreasury = (unsplit * c.treasuryBps) / total;
            uint256 toInfra = (unsplit * c.infraBps) / total;
            uint256 toProvers = unsplit - toTreasury - toInfra;
            _config.protocolUnsplit = 0;
            if (toTreasury != 0) _credit(treasury, toTreasury);
            if (toInfra != 0) _credit(infrastructure, toInfra);
            proverPool += toProvers;
            emit ProtocolFeesSplit(toTreasury, toProvers, toInfra);
        }
        uint256 count = proverCount;
        uint256 pool = proverPool;
        if (count != 0 && pool >= count) {
            // Division first on purpose: the remainder stays in the pool for the next split.
            uint256 each = pool / count;
            accPerProver += each;
            // slither-disable-next-line divide-before-multiply
            proverPool = pool - each * count;
            // slither-disable-next-line divide-before-multiply
            proverOutstanding += each * count;
        }
    }

    function _accrueProver(address prover) internal returns (uint256 owed) {
        if (!_proverActive[prover]) return 0;
        uint256 acc = accPerProver;
        owed = acc - _proverSnap[prover];
        _proverSnap[prover] = acc;
        if (owed != 0) {
            proverOutstanding -= owed;
            _credit(prover, owed);
        }
    }

    function _accrueHolder(uint256 modelId, address holder, uint256 balance) internal returns (uint256 owed) {
        uint256 acc = accPerShare[modelId];
        owed = (balance * (acc - _holderSnap[modelId][holder])) / TOTAL_SHARES;
        _holderSnap[modelId][holder] = acc;
        if (owed != 0) {
            modelOutstanding[modelId] -= owed;
            _credit(holder, owed);
        }
    }

    function _credit(address account, uint256 amount) internal {
        claimable[account] += amount;
        _accrued[account] += amount;
        emit Credited(account, amount);
    }

    function _pay(address account, uint256 have, uint256 amount) private {
        claimable[account] = have - amount;
        emit Claimed(account, amount);
        _feeToken.safeTransfer(account, amount);
    }

    /// @dev Pull `amount` from the caller and reject tokens that deliver less (fee-on-transfer).
    function _pull(uint256 amount) internal {
        uint256 before = _feeToken.balanceOf(address(this));
        _feeToken.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = _feeToken.balanceOf(address(this)) - before;
        if (received != amount) revert FeeOnTransferToken(amount, received);
    }
}
