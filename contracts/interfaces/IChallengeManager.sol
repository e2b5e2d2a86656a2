// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IChallengeManager
/// @notice Provers (bonded) challenge hosts.
///
/// Provable challenges slash at once:
/// - under-reporting: a host-signed receipt whose `seq` exceeds `UsageLedger.seqBound` of its
///   (reported) epoch;
/// - equivocation: two different receipts of one copy with the same `seq`;
/// - missed report: an epoch of an active copy still unreported `reportGrace` after it closed.
///
/// Receipts are EIP-712 typed data signed by the host account, domain
/// `{name: "OML Hub", version: "1", chainId, verifyingContract: this}`, type
/// `Receipt(uint256 copyId,uint64 epoch,uint64 seq,bytes32 promptHash,bytes32 responseHash)`
/// (`RECEIPT_TYPEHASH`). Signatures are 65-byte (r, s, v); high-s (malleable) ones are rejected.
///
/// Leak challenges are optimistic: `commitLeak(commitment)` with a challenge bond, where
/// `commitment = keccak256(abi.encode(challenger, copyId, index, salt, evidenceCID))`
/// (address, uint256, uint256, bytes32, string) and `salt` is the fingerprint leaf's salt; then,
/// from the next block and within `revealWindow`, `revealLeak` with the fingerprint
/// key/response, the Merkle proof against the copy's `fpRoot` and the evidence CID (transcript
/// on IPFS). The key index is burned. The host may `disputeLeak` within `liveness` by posting
/// `counterBond`; the arbiter rules within `arbitrationWindow`. Undisputed reveals slash after
/// the liveness window.
/// Challenge states: Committed → Revealed → (Upheld | Disputed → (Upheld | Rejected | TimedOut));
/// Committed → Expired when never revealed.
interface IChallengeManager {
    enum Kind {
        UnderReport,
        Equivocation,
        MissedReport,
        Leak
    }

    enum LeakState {
        None,
        Committed,
        Revealed,
        Disputed,
        Upheld,
        Rejected,
        TimedOut,
        Expired
    }

    struct Receipt {
        uint256 copyId;
        uint64 epoch;
        uint64 seq;
        bytes32 promptHash;
        bytes32 responseHash;
    }

    struct LeakReveal {
        uint256 copyId;
        uint256 index;
        bytes key;
        bytes response;
        bytes32 salt;
        bytes32[] proof;
        string evidenceCID;
    }

    struct LeakChallenge {
        address challenger;
        LeakState state;
        uint64 commitBlock;
        uint64 deadline;
        address host;
        uint128 bond;
        uint128 counterBond;
        uint256 copyId;
        uint256 index;
        bytes32 commitment;
    }

    /// @notice Protocol parameters (timelock-governed); see docs/protocol.md for defaults.
    struct Params {
        uint128 proverBond;
        uint128 challengeBond;
        uint128 counterBond;
        uint128 challengerRewardCap;
        uint64 reportGrace;
        uint64 revealWindow;
        uint64 liveness;
        uint64 arbitrationWindow;
        uint16 underReportSlashBps;
        uint16 missedReportSlashBps;
        uint16 leakSlashBps;
        uint16 challengerRewardBps;
        uint16 bondForfeitBps;
        address arbiter;
    }

    error NotProver(address account);
    error AlreadyProver(address account);
    error ProverHasOpenChallenges(address prover, uint256 open);
    error InvalidSignature();
    error NotHostSignature(address signer, address host);
    error CopyNotChallengeable(uint256 copyId);
    error EpochNotReported(uint256 copyId, uint256 epoch);
    error NotUnderReported(uint256 seq, uint256 bound);
    error AlreadyPunished(uint256 copyId, uint256 key);
    error NotEquivocation();
    error EpochNotMissed(uint256 copyId, uint256 epoch);
    error ReportGraceNotOver(uint256 readyAt);
    error UnknownChallenge(uint256 challengeId);
    error NotChallenger(uint256 challengeId, address caller);
    error WrongChallengeState(uint256 challengeId, LeakState state);
    error RevealTooEarly(uint256 challengeId);
    error RevealWindowOver(uint256 challengeId);
    error CommitmentMismatch(uint256 challengeId);
    error IndexOutOfRange(uint256 index, uint256 fpCount);
    error KeyAlreadyRevealed(uint256 copyId, uint256 index);
    error InvalidProof();
    error NotAccused(uint256 challengeId, address caller);
    error LivenessOver(uint256 challengeId);
    error NotArbiter(address caller);
    error TooEarly(uint256 readyAt);
    error ArbitrationWindowOver(uint256 challengeId);
    error ZeroCommitment();
    error BadParams();
    error WindowsExceedExitDelay(uint256 span, uint256 exitDelay);
    error ProtocolPaused();
    error TokenNotAllowed(address token);
    error FeeOnTransferToken(uint256 expected, uint256 received);

    event ProverRegistered(address indexed prover, uint256 bond);
    event ProverUnregistered(address indexed prover, uint256 bond);
    /// @notice A provable challenge slashed `copyId` at once.
    event ProvableChallenge(
        uint256 indexed challengeId,
        uint256 indexed copyId,
        address indexed challenger,
        Kind kind,
        uint256 slashed,
        uint256 reward
    );
    event LeakCommitted(uint256 indexed challengeId, address indexed challenger, bytes32 commitment, uint256 revealBy);
    event LeakRevealed(
        uint256 indexed challengeId,
        uint256 indexed copyId,
        uint256 index,
        bytes key,
        bytes response,
        string evidenceCID,
        uint256 livenessEnds
    );
    event LeakDisputed(uint256 indexed challengeId, uint256 indexed copyId, address indexed host, uint256 ruleBy);
    /// @notice Final state of a leak challenge: Upheld (slashed), Rejected, TimedOut or Expired.
    event LeakResolved(uint256 indexed challengeId, uint256 indexed copyId, LeakState outcome, uint256 slashed);
    event ParamsChanged(Params params);
    event PausedSet(bool paused);

    function registerProver() external;
    function unregisterProver() external;

    function challengeUnderReport(Receipt calldata receipt, bytes calldata signature)
        external
        returns (uint256 challengeId);
    function challengeEquivocation(
        Receipt calldata a,
        bytes calldata signatureA,
        Receipt calldata b,
        bytes calldata signatureB
    ) external returns (uint256 challengeId);
    function challengeMissedReport(uint256 copyId, uint64 epoch) external returns (uint256 challengeId);

    function commitLeak(bytes32 commitment) external returns (uint256 challengeId);
    function revealLeak(uint256 challengeId, LeakReveal calldata reveal) external;
    /// @notice The accused host disputes within the liveness window, posting `counterBond`.
    function disputeLeak(uint256 challengeId) external;
    /// @notice Arbiter ruling on a disputed leak.
    function rule(uint256 challengeId, bool leaked) external;
    /// @notice Anyone: settle an undisputed reveal after liveness (slash), an unruled dispute
    /// after the arbitration window (bonds back), or an unrevealed commit after the reveal window.
    function finalizeLeak(uint256 challengeId) external;

    function receiptDigest(Receipt calldata receipt) external view returns (bytes32);
    function isProver(address account) external view returns (bool);
    function params() external view returns (Params memory);
    function getLeak(uint256 challengeId) external view returns (LeakChallenge memory);
    function keyRevealed(uint256 copyId, uint256 index) external view returns (bool);
    function totalBonds() external view returns (uint256);
    /// @notice Longest time a copy can stay challengeable after its exit request, in seconds.
    function maxChallengeSpan() external view returns (uint256);
}
