// Errors in words. Everything a transaction or a read can throw — a wallet rejection, a wrong
// network, a custom error from the contracts (decoded against the deployed ABIs), a dead RPC —
// becomes one sentence a person can act on.

import {
  BaseError,
  ContractFunctionRevertedError,
  decodeErrorResult,
  type Abi,
  type Hex,
} from "viem";
import { formatDuration, formatTimestamp, formatToken, shortAddress, words } from "./format";

/** An `error` item of a JSON ABI. */
export type AbiError = Extract<Abi[number], { type: "error" }>;

type Args = readonly unknown[];
type Explainer = (args: Args) => string;

const big = (v: unknown): bigint => (typeof v === "bigint" ? v : BigInt(String(v ?? 0)));
const usd = (v: unknown): string => formatToken(big(v));
const addr = (v: unknown): string => shortAddress(String(v));
const when = (v: unknown): string => {
  const at = Number(big(v));
  const left = at - Math.floor(Date.now() / 1000);
  return left > 0 ? `${formatTimestamp(at)} (in ${formatDuration(left)})` : formatTimestamp(at);
};
const COPY_STATES = ["none", "requested", "active", "exiting", "withdrawn"];
const LEAK_STATES = ["none", "committed", "revealed", "disputed", "upheld", "rejected", "timed out", "expired"];
const PROPOSAL_STATES = ["none", "active", "defeated", "succeeded", "executed"];

/** Sentences for the protocol's custom errors (names from contracts/interfaces/I*.sol). */
export const ERROR_MESSAGES: Record<string, Explainer> = {
  // ModelRegistry
  UnknownModel: ([id]) => `Model #${big(id)} does not exist.`,
  NotModelOwner: ([id, who]) => `Only the owner of model #${big(id)} can do this; ${addr(who)} is not the owner.`,
  EmptyCID: () => "A content ID (CID) is required.",
  TooManyParents: ([n, max]) => `Too many parents: ${big(n)} given, at most ${big(max)} allowed.`,
  TooManyAncestors: ([n, max]) => `The family tree would have ${big(n)} ancestors; at most ${big(max)} are allowed.`,
  DepthTooHigh: ([d, max]) => `The family tree would be ${big(d)} generations deep; at most ${big(max)} are allowed.`,
  DuplicateParent: ([id]) => `Model #${big(id)} is listed twice as a parent.`,
  SelfAncestry: ([id]) => `Model #${big(id)} cannot be its own ancestor.`,
  LengthMismatch: ([p, s]) => `Each parent needs exactly one share (${big(p)} parents, ${big(s)} shares).`,
  ZeroShare: ([id]) => `The share for parent #${big(id)} must be more than 0%.`,
  RoyaltyStackTooHigh: ([stack, max]) =>
    `The royalty stack would be ${Number(big(stack)) / 100}%, above the limit of ${Number(big(max)) / 100}%.`,
  UnknownVersion: ([id, v]) => `Model #${big(id)} has no version ${big(v)}.`,
  NotGovernor: ([who]) => `Only the model's governance can do this (${addr(who)} is not it).`,
  // AccessManager
  VersionNotAccepted: ([id, v]) => `Version ${big(v)} of model #${big(id)} is not accepted for licensing yet.`,
  LicensingPaused: ([id]) => `Licensing of model #${big(id)} is paused by its owners.`,
  CollateralTooLow: ([have, need]) => `Collateral too low: you offered ${usd(have)}, the model needs at least ${usd(need)}.`,
  BadPubKeyLength: ([n]) => `The host public key must be 64 bytes (got ${big(n)}).`,
  PubKeyMismatch: ([derived, caller]) =>
    `The public key belongs to ${addr(derived)}, not to your account ${addr(caller)}. Derive it from your wallet.`,
  EmptyEndpoint: () => "An inference endpoint URL is required.",
  NotHost: ([copy, who]) => `Only the host of copy #${big(copy)} can do this (${addr(who)} is not).`,
  NotOracle: ([who]) => `Only the oracle can deliver copies (${addr(who)} is not the oracle).`,
  AlreadyDelivered: ([copy]) => `Copy #${big(copy)} was already delivered.`,
  WrongState: ([copy, state]) => `Copy #${big(copy)} is ${COPY_STATES[Number(big(state))] ?? "in another state"}; this action does not apply now.`,
  ExitDelayNotOver: ([at]) => `The exit delay is not over; you can withdraw from ${when(at)}.`,
  DeliveryTimeoutNotOver: ([at]) => `The oracle still has time to deliver; you can cancel from ${when(at)}.`,
  ChallengePending: ([copy, open]) => `Copy #${big(copy)} has ${big(open)} open challenge(s); wait until they are resolved.`,
  SlashTooLarge: ([amount, coll]) => `Cannot slash ${usd(amount)}: the collateral is only ${usd(coll)}.`,
  ProtocolPaused: () => "The protocol is paused by governance; try again later.",
  TokenNotAllowed: ([token]) => `The token ${addr(token)} is not accepted for fees.`,
  FeeOnTransferToken: () => "This token takes a fee on transfer and cannot be used.",
  ZeroAmount: () => "The amount must be more than zero.",
  ZeroAddress: () => "An address is required (the zero address was given).",
  Unauthorized: ([who]) => `${addr(who)} is not allowed to do this.`,
  // UsageLedger / FeeRouter
  UnknownCopy: ([copy]) => `Copy #${big(copy)} does not exist.`,
  NotCopyHost: ([copy, who]) => `Only the host of copy #${big(copy)} can report its usage (${addr(who)} is not).`,
  EpochNotClosed: ([epoch, at]) => `Epoch ${big(epoch)} is still running; it closes ${when(at)}.`,
  AlreadyReported: ([copy, epoch]) => `Epoch ${big(epoch)} of copy #${big(copy)} is already reported.`,
  EpochOutOfOrder: ([epoch, expected]) => `Epochs are reported in order: report epoch ${big(expected)} before ${big(epoch)}.`,
  InsufficientClaimable: ([have, want]) =>
    big(have) === 0n ? "Nothing to claim yet." : `You can claim ${usd(have)}, not ${usd(want)}.`,
  CutsTooHigh: ([total, max]) => `Protocol cuts of ${Number(big(total)) / 100}% exceed the ${Number(big(max)) / 100}% cap.`,
  // ChallengeManager
  NotProver: ([who]) => `${addr(who)} is not a registered prover; register (with a bond) first.`,
  AlreadyProver: ([who]) => `${addr(who)} is already a registered prover.`,
  ProverHasOpenChallenges: ([, open]) => `You have ${big(open)} open challenge(s); finish them first.`,
  UnknownChallenge: ([id]) => `Challenge #${big(id)} does not exist.`,
  NotChallenger: ([id]) => `Only the challenger of #${big(id)} can do this.`,
  WrongChallengeState: ([id, state]) => `Challenge #${big(id)} is ${LEAK_STATES[Number(big(state))] ?? "in another state"}; this action does not apply now.`,
  NotAccused: ([id]) => `Only the accused host can dispute challenge #${big(id)}.`,
  LivenessOver: ([id]) => `The dispute window of challenge #${big(id)} is over.`,
  NotArbiter: ([who]) => `Only the arbiter can rule (${addr(who)} is not the arbiter).`,
  TooEarly: ([at]) => `Too early: possible from ${when(at)}.`,
  ArbitrationWindowOver: ([id]) => `The arbiter's window for challenge #${big(id)} is over; finalize it instead.`,
  // ModelGovernor
  InsufficientShares: ([have, want]) => `You hold ${big(have)} shares, ${big(want)} are needed.`,
  BelowProposalThreshold: () => "You do not hold enough shares of this model to make a proposal.",
  UnknownProposal: ([id]) => `Proposal #${big(id)} does not exist.`,
  VotingClosed: ([id]) => `Voting on proposal #${big(id)} is closed.`,
  AlreadyVoted: ([id]) => `You already voted on proposal #${big(id)}.`,
  NoVotingPower: () => "You held no shares of this model when the proposal was made, so you cannot vote on it.",
  NotSucceeded: ([id, state]) => `Proposal #${big(id)} cannot be executed: it is ${PROPOSAL_STATES[Number(big(state))] ?? "not passed"}.`,
  InvalidValue: ([v]) => `The value ${big(v)} is not valid for this action.`,
  // Set-up and parameter errors (deployment / governance; a person rarely meets these)
  AlreadyWired: () => "The protocol contracts are already wired together.",
  NotWired: () => "The protocol contracts are not wired together yet (deployment incomplete).",
  BadParams: () => "These parameters are not valid.",
  BadEpochLength: () => "The epoch length is not valid.",
  ExitDelayTooShort: ([delay, min]) => `The exit delay of ${formatDuration(Number(big(delay)))} is shorter than the challenge span (${formatDuration(Number(big(min)))}).`,
  WindowsExceedExitDelay: ([span, delay]) =>
    `The challenge windows (${formatDuration(Number(big(span)))}) would outlast the exit delay (${formatDuration(Number(big(delay)))}).`,
  FutureLookup: ([block]) => `Block ${big(block)} is in the future; votes can only be read for past blocks.`,
  // Delivery (oracle)
  BadFingerprints: () => "The fingerprint commitment is not valid (empty root or count).",
  // Usage reports
  EpochAfterExit: ([epoch, end]) => `Epoch ${big(epoch)} is after the copy's last epoch (${big(end)}); nothing more to report.`,
  SeqWentBackwards: ([seq, prev]) => `The last receipt number ${big(seq)} is below the one already reported (${big(prev)}).`,
  CallsMismatch: ([calls, expected]) => `The report says ${big(calls)} calls but the receipt numbers account for ${big(expected)}.`,
  SeqTooLarge: ([seq]) => `Receipt number ${big(seq)} is too large.`,
  // Provable challenges
  InvalidSignature: () => "The receipt signature is not valid.",
  NotHostSignature: ([signer, hostAddr]) => `The receipt was signed by ${addr(signer)}, not by the host ${addr(hostAddr)}.`,
  CopyNotChallengeable: ([copy]) => `Copy #${big(copy)} cannot be challenged (not delivered, or already withdrawn).`,
  EpochNotReported: ([copy, epoch]) => `Epoch ${big(epoch)} of copy #${big(copy)} is not reported yet.`,
  NotUnderReported: ([seq, bound]) => `Receipt ${big(seq)} is within the reported ${big(bound)} calls: no under-reporting.`,
  AlreadyPunished: ([copy, key]) => `Copy #${big(copy)} was already punished for this (${big(key)}).`,
  NotEquivocation: () => "The two receipts are not an equivocation (different copies or sequence numbers, or identical).",
  EpochNotMissed: ([copy, epoch]) => `Epoch ${big(epoch)} of copy #${big(copy)} is reported or not due; it was not missed.`,
  ReportGraceNotOver: ([at]) => `The host still has time to report; a missed report is provable from ${when(at)}.`,
  // Leak challenges
  ZeroCommitment: () => "The commitment must not be empty.",
  RevealTooEarly: ([id]) => `Challenge #${big(id)} can be revealed from the block after its commitment.`,
  RevealWindowOver: ([id]) => `The reveal window of challenge #${big(id)} is over.`,
  CommitmentMismatch: ([id]) => `The revealed data does not match the commitment of challenge #${big(id)}.`,
  IndexOutOfRange: ([index, count]) => `Fingerprint ${big(index)} does not exist; the copy has ${big(count)}.`,
  KeyAlreadyRevealed: ([copy, index]) => `Fingerprint ${big(index)} of copy #${big(copy)} was already revealed (each is usable once).`,
  InvalidProof: () => "The fingerprint's Merkle proof does not match the copy's commitment.",
  // OpenZeppelin access control and tokens
  OwnableUnauthorizedAccount: ([who]) => `${addr(who)} is not the owner of this contract.`,
  AccessControlUnauthorizedAccount: ([who]) => `${addr(who)} does not have the role this needs.`,
  ERC721InsufficientApproval: ([who, id]) => `${addr(who)} may not transfer model #${big(id)}.`,
  ERC721IncorrectOwner: ([who, id]) => `${addr(who)} does not own model #${big(id)}.`,
  ERC20InvalidReceiver: ([who]) => `Tokens cannot be sent to ${addr(who)}.`,
  // MockUSD / OpenZeppelin ERC-20 (IERC20Errors)
  FaucetCapExceeded: ([amount, cap]) => `The faucet gives at most ${usd(cap)} per call (asked ${usd(amount)}).`,
  ERC20InsufficientBalance: ([, have, need]) => `Insufficient funds: your balance is ${usd(have)}, ${usd(need)} is needed.`,
  ERC20InsufficientAllowance: ([, have, need]) =>
    `Insufficient allowance: the contract may spend ${usd(have)} of your tokens, ${usd(need)} is needed. Approve first.`,
  ERC721NonexistentToken: ([id]) => `Model #${big(id)} does not exist.`,
};

/** Every `error` item of the given ABIs, once per selector-relevant signature. */
export function collectErrorAbi(abis: readonly Abi[]): AbiError[] {
  const seen = new Set<string>();
  const out: AbiError[] = [];
  for (const abi of abis) {
    for (const item of abi) {
      if (item.type !== "error") continue;
      const key = `${item.name}(${item.inputs.map((i) => i.type).join(",")})`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(item);
    }
  }
  return out;
}

/** A decoded custom error in words. */
export function describeCustomError(name: string, args: Args, abiItem?: AbiError): string {
  const explain = ERROR_MESSAGES[name];
  if (explain) return explain(args);
  const names = abiItem?.inputs.map((i, n) => i.name || `arg${n}`) ?? args.map((_, n) => `arg${n}`);
  const detail = args.length ? ` (${args.map((a, n) => `${words(names[n] ?? `arg${n}`)}: ${String(a)}`).join(", ")})` : "";
  const sentence = words(name);
  return `${sentence.charAt(0).toUpperCase()}${sentence.slice(1)}${detail}.`;
}

/** Decode raw revert data against the protocol's errors; null when it is not one of them. */
export function decodeRevertData(data: Hex, errorAbi: readonly AbiError[]): string | null {
  if (!data || data === "0x") return null;
  try {
    const decoded = decodeErrorResult({ abi: errorAbi as Abi, data });
    const item = errorAbi.find((e) => e.name === decoded.errorName);
    return describeCustomError(decoded.errorName, (decoded.args ?? []) as Args, item);
  } catch {
    return null;
  }
}

interface RpcLike {
  code?: number;
  message?: string;
  shortMessage?: string;
  data?: unknown;
  cause?: unknown;
  name?: string;
}

function findRevertData(error: unknown): Hex | null {
  let current: unknown = error;
  for (let i = 0; i < 12 && current && typeof current === "object"; i++) {
    const e = current as RpcLike;
    if (typeof e.data === "string" && /^0x[0-9a-fA-F]{8,}$/.test(e.data)) return e.data as Hex;
    if (e.data && typeof e.data === "object") {
      const nested = (e.data as { data?: unknown }).data;
      if (typeof nested === "string" && /^0x[0-9a-fA-F]{8,}$/.test(nested)) return nested as Hex;
    }
    current = e.cause;
  }
  return null;
}

function walk(error: unknown, predicate: (e: RpcLike) => boolean): RpcLike | null {
  let current: unknown = error;
  for (let i = 0; i < 12 && current && typeof current === "object"; i++) {
    if (predicate(current as RpcLike)) return current as RpcLike;
    current = (current as RpcLike).cause;
  }
  return null;
}

export interface ExplainContext {
  /** Configured chain, for wrong-network messages. */
  chainId?: number;
  chainName?: string;
  rpcUrl?: string;
}

/** One sentence for anything thrown by a wallet, viem or the contracts. */
export function explainError(error: unknown, errorAbi: readonly AbiError[] = [], ctx: ExplainContext = {}): string {
  if (error == null) return "Something went wrong (no details).";
  if (typeof error === "string") return error;

  // 1. A decoded custom error (viem did the work when the ABI had it).
  const reverted = walk(error, (e) => e instanceof ContractFunctionRevertedError) as ContractFunctionRevertedError | null;
  if (reverted?.data?.errorName && reverted.data.errorName !== "Error" && reverted.data.errorName !== "Panic") {
    const item = errorAbi.find((e) => e.name === reverted.data?.errorName);
    return describeCustomError(reverted.data.errorName, (reverted.data.args ?? []) as Args, item);
  }
  // 2. Raw revert data anywhere in the chain of causes.
  const data = findRevertData(error);
  if (data) {
    const decoded = decodeRevertData(data, errorAbi);
    if (decoded) return decoded;
  }
  if (reverted?.reason) return `The transaction would fail: ${reverted.reason}.`;

  // 3. Wallet and transport conditions.
  if (walk(error, (e) => e.code === 4001 || e.name === "UserRejectedRequestError")) return "You rejected the request in your wallet.";
  if (walk(error, (e) => e.code === 4100)) return "Your wallet has not authorised this site; connect it first.";
  if (walk(error, (e) => e.code === 4902 || e.name === "ChainNotConfiguredError" || e.name === "ChainMismatchError")) {
    return `Your wallet is on another network. Switch it to ${ctx.chainName ?? "the configured chain"}${ctx.chainId ? ` (chain id ${ctx.chainId})` : ""}.`;
  }
  if (walk(error, (e) => e.code === -32002)) return "Your wallet already has a request open; finish it there first.";
  if (walk(error, (e) => e.name === "InsufficientFundsError" || /insufficient funds/i.test(e.message ?? "")))
    return "Insufficient funds: your account does not have enough ETH to pay for gas.";
  if (walk(error, (e) => e.name === "HttpRequestError" || e.name === "TimeoutError" || /fetch failed|Failed to fetch/i.test(e.message ?? "")))
    return `Cannot reach the chain${ctx.rpcUrl ? ` at ${ctx.rpcUrl}` : ""}. Is the node running?`;
  if (walk(error, (e) => e.name === "ProviderNotFound")) return "No wallet found. Install a browser wallet, or browse read-only.";

  if (error instanceof BaseError) return error.shortMessage.endsWith(".") ? error.shortMessage : `${error.shortMessage}.`;
  if (error instanceof Error) return error.message;
  return String(error);
}
