// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IChallengeManager} from "./interfaces/IChallengeManager.sol";
import {IAccessManager} from "./interfaces/IAccessManager.sol";
import {IUsageLedger} from "./interfaces/IUsageLedger.sol";

/// @title ChallengeManager
/// @notice Provers, provable challenges (immediate slash) and optimistic leak challenges.
contract ChallengeManager is IChallengeManager, EIP712, Ownable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    /*//////////////////////////////////////////////////////////////
                                 STATE
    //////////////////////////////////////////////////////////////*/

    bytes32 public constant RECEIPT_TYPEHASH =
        keccak256("Receipt(uint256 copyId,uint64 epoch,uint64 seq,bytes32 promptHash,bytes32 responseHash)");
    uint256 public constant BPS = 10_000;

    IERC20 public immutable feeToken;
    IAccessManager public immutable access;
    IUsageLedger public immutable ledger;

    Params private _params;
    bool public paused;

    uint256 public nextChallengeId = 1;
    uint256 public totalBonds;

    mapping(address prover => uint256) public proverBondOf;
    mapping(address prover => uint256) public openChallengesOf;
    mapping(uint256 challengeId => LeakChallenge) private _leaks;
    mapping(uint256 copyId => mapping(uint256 index => bool)) private _revealed;
    /// @dev Provable offences punished once: key = epoch (under-report), seq (equivocation) or
    /// epoch (missed report), each in its own map.
    mapping(uint256 copyId => mapping(uint256 epoch => bool)) public underReportPunished;
    mapping(uint256 copyId => mapping(uint256 seq => bool)) public equivocationPunished;
    mapping(uint256 copyId => mapping(uint256 epoch => bool)) public missedReportPunished;

    constructor(address owner_, IERC20 feeToken_, IAccessManager access_, IUsageLedger ledger_, Params memory params_)
        EIP712("OML Hub", "1")
        Ownable(owner_)
    {
        feeToken = feeToken_;
        access = access_;
        ledger = ledger_;
        _validate(params_);
        _params = params_;
        emit ParamsChanged(params_);
    }

    modifier whenNotPaused() {
        if (paused) revert ProtocolPaused();
        _;
    }

    modifier onlyProver() {
        if (proverBondOf[msg.sender] == 0) revert NotProver(msg.sender);
        _;
    }

    /*//////////////////////////////////////////////////////////////
                          GOVERNANCE (TIMELOCK)
    //////////////////////////////////////////////////////////////*/

    /// @notice Replace all parameters; windows must fit inside AccessManager's exit delay.
    function setParams(Params calldata params_) external onlyOwner {
        _validate(params_);
        uint256 span = _span(params_);
        uint256 delay = access.exitDelay();
        if (span >= delay) revert WindowsExceedExitDelay(span, delay);
        _params = params_;
        emit ParamsChanged(params_);
    }

    function setPaused(bool paused_) external onlyOwner {
        paused = paused_;
        emit PausedSet(paused_);
    }

    /*//////////////////////////////////////////////////////////////
                                PROVERS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IChallengeManager
    function registerProver() external nonReentrant whenNotPaused {
        if (proverBondOf[msg.sender] != 0) revert AlreadyProver(msg.sender);
        uint256 bond = _params.proverBond;
        proverBondOf[msg.sender] = bond;
        totalBonds += bond;
        emit ProverRegistered(msg.sender, bond);
        _pull(bond);
        ledger.onProverJoined(msg.sender);
    }

    /// @inheritdoc IChallengeManager
    function unregisterProver() external nonReentrant onlyProver {
        uint256 open = openChallengesOf[msg.sender];
        if (open != 0) revert ProverHasOpenChallenges(msg.sender, open);
        uint256 bond = proverBondOf[msg.sender];
        proverBondOf[msg.sender] = 0;
        emit ProverUnregistered(msg.sender, bond);
        totalBonds -= bond;
        ledger.onProverLeft(msg.sender);
        _refund(msg.sender, bond);
    }

    /*//////////////////////////////////////////////////////////////
                          PROVABLE CHALLENGES
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IChallengeManager
    function challengeUnderReport(Receipt calldata receipt, bytes calldata signature)
        external
        nonReentrant
        whenNotPaused
        onlyProver
        returns (uint256 challengeId)
    {
        uint256 copyId = receipt.copyId;
        IAccessManager.Copy memory c = _challengeable(copyId);
        _checkSigner(receipt, signature, c.host);
        (bool reported, uint256 bound) = ledger.seqBound(copyId, receipt.epoch);
        if (!reported) revert EpochNotReported(copyId, receipt.epoch);
        if (receipt.seq <= bound) revert NotUnderReported(receipt.seq, bound);
        if (underReportPunished[copyId][receipt.epoch]) revert AlreadyPunished(copyId, receipt.epoch);
        underReportPunished[copyId][receipt.epoch] = true;
        challengeId = _slashProvable(copyId, c.collateral, _params.underReportSlashBps, Kind.UnderReport);
    }

    /// @inheritdoc IChallengeManager
    function challengeEquivocation(
        Receipt calldata a,
        bytes calldata signatureA,
        Receipt calldata b,
        bytes calldata signatureB
    ) external nonReentrant whenNotPaused onlyProver returns (uint256 challengeId) {
        uint256 copyId = a.copyId;
        if (b.copyId != copyId || a.seq != b.seq || _structHash(a) == _structHash(b)) revert NotEquivocation();
        IAccessManager.Copy memory c = _challengeable(copyId);
        _checkSigner(a, signatureA, c.host);
        _checkSigner(b, signatureB, c.host);
        if (equivocationPunished[copyId][a.seq]) revert AlreadyPunished(copyId, a.seq);
        equivocationPunished[copyId][a.seq] = true;
        challengeId = _slashProvable(copyId, c.collateral, _params.underReportSlashBps, Kind.Equivocation);
    }

    /// @inheritdoc IChallengeManager
    function challengeMissedReport(uint256 copyId, uint64 epoch)
        external
        nonReentrant
        whenNotPaused
        onlyProver
        returns (uint256 challengeId)
    {
        IAccessManager.Copy memory c = _challengeable(copyId);
        IUsageLedger.CopyLedger memory info = ledger.copyLedger(copyId);
        if (epoch < info.firstEpoch || epoch > info.endEpoch || epoch < info.nextEpoch) {
            revert EpochNotMissed(copyId, epoch);
        }
        uint256 readyAt = ledger.epochEnd(epoch) + _params.reportGrace;
        if (block.timestamp < readyAt) revert ReportGraceNotOver(readyAt);
        if (missedReportPunished[copyId][epoch]) revert AlreadyPunished(copyId, epoch);
        missedReportPunished[copyId][epoch] = true;
        challengeId = _slashProvable(copyId, c.collateral, _params.missedReportSlashBps, Kind.MissedReport);
    }

    /*//////////////////////////////////////////////////////////////
                            LEAK CHALLENGES
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IChallengeManager
    function commitLeak(bytes32 commitment)
        external
        nonReentrant
        whenNotPaused
        onlyProver
        returns (uint256 challengeId)
    {
        if (commitment == bytes32(0)) revert ZeroCommitment();
        uint256 bond = _params.challengeBond;
        uint256 revealBy = block.timestamp + _params.revealWindow;
        challengeId = nextChallengeId++;
        _leaks[challengeId] = LeakChallenge({
            challenger: msg.sender,
            state: LeakState.Committed,
            commitBlock: uint64(block.number),
            deadline: uint64(revealBy),
            host: address(0),
            bond: bond.toUint128(),
            counterBond: 0,
            copyId: 0,
            index: 0,
            commitment: commitment
        });
        ++openChallengesOf[msg.sender];
        totalBonds += bond;
        emit LeakCommitted(challengeId, msg.sender, commitment, revealBy);
        _pull(bond);
    }

    /// @inheritdoc IChallengeManager
    function revealLeak(uint256 challengeId, LeakReveal calldata r) external nonReentrant whenNotPaused {
        LeakChallenge storage ch = _leaks[challengeId];
        if (ch.state == LeakState.None) revert UnknownChallenge(challengeId);
        if (ch.challenger != msg.sender) revert NotChallenger(challengeId, msg.sender);
        if (ch.state != LeakState.Committed) revert WrongChallengeState(challengeId, ch.state);
        if (block.number <= ch.commitBlock) revert RevealTooEarly(challengeId);
        if (block.timestamp > ch.deadline) revert RevealWindowOver(challengeId);
        bytes32 expected = keccak256(abi.encode(msg.sender, r.copyId, r.index, r.salt, r.evidenceCID));
        if (expected != ch.commitment) revert CommitmentMismatch(challengeId);
        IAccessManager.Copy memory c = _challengeable(r.copyId);
        if (r.index >= c.fpCount) revert IndexOutOfRange(r.index, c.fpCount);
        if (_revealed[r.copyId][r.index]) revert KeyAlreadyRevealed(r.copyId, r.index);
        bytes32 inner = keccak256(abi.encode(r.copyId, r.index, keccak256(r.key), keccak256(r.response), r.salt));
        bytes32 leaf = keccak256(bytes.concat(inner));
        if (!MerkleProof.verifyCalldata(r.proof, c.fpRoot, leaf)) revert InvalidProof();

        _revealed[r.copyId][r.index] = true;
        uint256 livenessEnds = block.timestamp + _params.liveness;
        ch.state = LeakState.Revealed;
        ch.copyId = r.copyId;
        ch.index = r.index;
        ch.host = c.host;
        ch.deadline = uint64(livenessEnds);
        emit LeakRevealed(challengeId, r.copyId, r.index, r.key, r.response, r.evidenceCID, livenessEnds);
        access.lockCopy(r.copyId);
    }

    /// @inheritdoc IChallengeManager
    function disputeLeak(uint256 challengeId) external nonReentrant {
        LeakChallenge storage ch = _leaks[challengeId];
        if (ch.state == LeakState.None) revert UnknownChallenge(challengeId);
        if (ch.state != LeakState.Revealed) revert WrongChallengeState(challengeId, ch.state);
        if (msg.sender != ch.host) revert NotAccused(challengeId, msg.sender);
        if (block.timestamp > ch.deadline) revert LivenessOver(challengeId);
        uint256 bond = _params.counterBond;
        uint256 ruleBy = block.timestamp + _params.arbitrationWindow;
        ch.state = LeakState.Disputed;
        ch.counterBond = bond.toUint128();
        ch.deadline = uint64(ruleBy);
        totalBonds += bond;
        emit LeakDisputed(challengeId, ch.copyId, msg.sender, ruleBy);
        _pull(bond);
    }

    /// @inheritdoc IChallengeManager
    function rule(uint256 challengeId, bool leaked) external nonReentrant {
        if (msg.sender != _params.arbiter) revert NotArbiter(msg.sender);
        LeakChallenge storage ch = _leaks[challengeId];
        if (ch.state == LeakState.None) revert UnknownChallenge(challengeId);
        if (ch.state != LeakState.Disputed) revert WrongChallengeState(challengeId, ch.state);
        if (block.timestamp > ch.deadline) revert ArbitrationWindowOver(challengeId);
        if (leaked) {
            _uphold(challengeId, ch, ch.counterBond);
        } else {
            ch.state = LeakState.Rejected;
            uint256 forfeit = (uint256(ch.bond) * _params.bondForfeitBps) / BPS;
            _close(ch);
            totalBonds -= uint256(ch.bond) + ch.counterBond;
            emit LeakResolved(challengeId, ch.copyId, LeakState.Rejected, 0);
            access.unlockCopy(ch.copyId);
            _refund(ch.challenger, ch.bond - forfeit);
            _refund(ch.host, ch.counterBond + forfeit);
        }
    }

    /// @inheritdoc IChallengeManager
    function finalizeLeak(uint256 challengeId) external nonReentrant {
        LeakChallenge storage ch = _leaks[challengeId];
        LeakState state = ch.state;
        if (state == LeakState.None) revert UnknownChallenge(challengeId);
        if (block.timestamp <= ch.deadline) revert TooEarly(uint256(ch.deadline) + 1);
        if (state == LeakState.Revealed) {
            _uphold(challengeId, ch, 0);
        } else if (state == LeakState.Disputed) {
            ch.state = LeakState.TimedOut;
            _close(ch);
            totalBonds -= uint256(ch.bond) + ch.counterBond;
            emit LeakResolved(challengeId, ch.copyId, LeakState.TimedOut, 0);
            access.unlockCopy(ch.copyId);
            _refund(ch.challenger, ch.bond);
            _refund(ch.host, ch.counterBond);
        } else if (state == LeakState.Committed) {
            ch.state = LeakState.Expired;
            uint256 forfeit = (uint256(ch.bond) * _params.bondForfeitBps) / BPS;
            _close(ch);
            totalBonds -= ch.bond;
            emit LeakResolved(challengeId, 0, LeakState.Expired, 0);
            _refund(ch.challenger, ch.bond - forfeit);
            _refund(ledger.treasury(), forfeit);
        } else {
            revert WrongChallengeState(challengeId, state);
        }
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    function receiptDigest(Receipt calldata receipt) public view returns (bytes32) {
        return _hashTypedDataV4(_structHash(receipt));
    }

    function isProver(address account) external view returns (bool) {
        return proverBondOf[account] != 0;
    }

    function params() external view returns (Params memory) {
        return _params;
    }

    function getLeak(uint256 challengeId) external view returns (LeakChallenge memory) {
        return _leaks[challengeId];
    }

    function keyRevealed(uint256 copyId, uint256 index) external view returns (bool) {
        return _revealed[copyId][index];
    }

    function maxChallengeSpan() external view returns (uint256) {
        return _span(_params);
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    function _structHash(Receipt calldata r) private pure returns (bytes32) {
        return keccak256(abi.encode(RECEIPT_TYPEHASH, r.copyId, r.epoch, r.seq, r.promptHash, r.responseHash));
    }

    function _checkSigner(Receipt calldata r, bytes calldata signature, address host) private view {
        // slither-disable-next-line unused-return
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(receiptDigest(r), signature);
        if (err != ECDSA.RecoverError.NoError) revert InvalidSignature();
        if (signer != host) revert NotHostSignature(signer, host);
    }

    function _challengeable(uint256 copyId) private view returns (IAccessManager.Copy memory c) {
        if (copyId == 0 || copyId >= access.nextCopyId()) revert CopyNotChallengeable(copyId);
        c = access.getCopy(copyId);
        if (c.state != IAccessManager.CopyState.Active && c.state != IAccessManager.CopyState.Exiting) {
            revert CopyNotChallengeable(copyId);
        }
    }

    function _reward(uint256 slashed) private view returns (uint256) {
        return Math.min((slashed * _params.challengerRewardBps) / BPS, _params.challengerRewardCap);
    }

    function _slashProvable(uint256 copyId, uint256 collateral, uint256 bps, Kind kind)
        private
        returns (uint256 challengeId)
    {
        challengeId = nextChallengeId++;
        uint256 amount = (collateral * bps) / BPS;
        uint256 reward = _reward(amount);
        emit ProvableChallenge(challengeId, copyId, msg.sender, kind, amount, reward);
        access.slash(copyId, challengeId, amount, msg.sender, reward);
    }

    /// @dev Leak proven: slash, force the copy out, bond (plus any counter-bond) back to the challenger.
    function _uphold(uint256 challengeId, LeakChallenge storage ch, uint256 counterBond) private {
        ch.state = LeakState.Upheld;
        _close(ch);
        totalBonds -= uint256(ch.bond) + counterBond;
        uint256 copyId = ch.copyId;
        uint256 collateral = access.getCopy(copyId).collateral;
        uint256 amount = (collateral * _params.leakSlashBps) / BPS;
        uint256 reward = _reward(amount);
        emit LeakResolved(challengeId, copyId, LeakState.Upheld, amount);
        access.unlockCopy(copyId);
        access.slash(copyId, challengeId, amount, ch.challenger, reward);
        access.forceExit(copyId);
        _refund(ch.challenger, uint256(ch.bond) + counterBond);
    }

    function _close(LeakChallenge storage ch) private {
        --openChallengesOf[ch.challenger];
    }

    /// @dev Bonds leave through the FeeRouter's pull claims (one place to claim from).
    /// @dev Callers take the amounts out of `totalBonds` before any refund (effects first).
    function _refund(address account, uint256 amount) private {
        if (amount == 0) return;
        feeToken.safeTransfer(address(ledger), amount);
        ledger.creditAccount(account, amount);
    }

    /// @dev Pull `amount` from the caller; reject tokens that deliver less (fee-on-transfer).
    function _pull(uint256 amount) private {
        if (amount == 0) return;
        if (!ledger.isTokenAllowed(address(feeToken))) revert TokenNotAllowed(address(feeToken));
        uint256 before = feeToken.balanceOf(address(this));
        feeToken.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = feeToken.balanceOf(address(this)) - before;
        if (received != amount) revert FeeOnTransferToken(amount, received);
    }

    function _span(Params memory p) private view returns (uint256) {
        return ledger.epochLength() + p.reportGrace + p.revealWindow + p.liveness + p.arbitrationWindow;
    }

    function _validate(Params memory p) private pure {
        if (
            p.arbiter == address(0) || p.proverBond == 0 || p.challengeBond == 0 || p.revealWindow == 0
                || p.liveness == 0 || p.arbitrationWindow == 0 || p.underReportSlashBps > BPS
                || p.missedReportSlashBps > BPS || p.leakSlashBps > BPS || p.challengerRewardBps > BPS
                || p.bondForfeitBps > BPS
        ) revert BadParams();
    }
}
