import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  BaseError,
  ChainMismatchError,
  ContractFunctionExecutionError,
  ContractFunctionRevertedError,
  encodeErrorResult,
  HttpRequestError,
  InsufficientFundsError,
  UserRejectedRequestError,
  defineChain,
  type Abi,
} from "viem";
import { describe, expect, it } from "vitest";
import { collectErrorAbi, decodeRevertData, describeCustomError, ERROR_MESSAGES, explainError, type AbiError } from "../src/lib/errors";

// The ABIs `make compile` exports (scripts/export_abis.py): the same files the app loads.
const ABI_DIR = resolve(__dirname, "..", "..", "deployments", "abi");
const CONTRACTS = ["ModelRegistry", "AccessManager", "UsageLedger", "ChallengeManager", "ModelGovernor", "MockUSD"];
if (!existsSync(join(ABI_DIR, "ModelRegistry.json"))) throw new Error(`${ABI_DIR} has no ABIs: run \`make compile\` first`);
const abi = (name: string) => JSON.parse(readFileSync(join(ABI_DIR, `${name}.json`), "utf8")) as Abi;
const errorAbi = collectErrorAbi(CONTRACTS.map(abi));
const CTX = { chainId: 31337, chainName: "OML local (Anvil)", rpcUrl: "http://127.0.0.1:18545" };

/** What viem throws when a simulated call reverts with a custom error the ABI knows. */
function reverted(contract: string, errorName: string, args: readonly unknown[]): ContractFunctionExecutionError {
  const data = encodeErrorResult({ abi: abi(contract), errorName, args } as never);
  const cause = new ContractFunctionRevertedError({ abi: abi(contract), data, functionName: "f" });
  return new ContractFunctionExecutionError(cause, { abi: abi(contract), functionName: "f", args: [] });
}

describe("custom errors of the deployed contracts", () => {
  it("has a sentence for every error the protocol's interfaces declare", () => {
    const declared = readdirSync(ABI_DIR)
      .filter((f) => /^I[A-Z]\w*\.json$/.test(f))
      .flatMap((f) => (JSON.parse(readFileSync(join(ABI_DIR, f), "utf8")) as Abi).filter((i): i is AbiError => i.type === "error").map((i) => i.name));
    declared.push("FaucetCapExceeded");
    expect(declared.length).toBeGreaterThan(50);
    expect([...new Set(declared)].filter((name) => !(name in ERROR_MESSAGES))).toEqual([]);
  });

  it("explains a decoded revert with its arguments", () => {
    expect(explainError(reverted("AccessManager", "CollateralTooLow", [5_000_000n, 10_000_000n]), errorAbi)).toBe(
      "Collateral too low: you offered 5 mUSD, the model needs at least 10 mUSD.",
    );
    expect(explainError(reverted("ModelRegistry", "RoyaltyStackTooHigh", [3000n, 2500n]), errorAbi)).toBe(
      "The royalty stack would be 30%, above the limit of 25%.",
    );
    expect(explainError(reverted("ModelGovernor", "NoVotingPower", ["0x976EA74026E726554dB657fA54763abd0C3a0aa9"]), errorAbi)).toMatch(/held no shares/);
    expect(explainError(reverted("UsageLedger", "InsufficientClaimable", [0n, 1n]), errorAbi)).toBe("Nothing to claim yet.");
    expect(explainError(reverted("AccessManager", "WrongState", [3n, 3]), errorAbi)).toBe("Copy #3 is exiting; this action does not apply now.");
  });

  it("explains insufficient token balance and allowance (OpenZeppelin ERC-20 errors)", () => {
    const who = "0x976EA74026E726554dB657fA54763abd0C3a0aa9";
    expect(explainError(reverted("MockUSD", "ERC20InsufficientBalance", [who, 1_000_000n, 10_000_000n]), errorAbi)).toBe(
      "Insufficient funds: your balance is 1 mUSD, 10 mUSD is needed.",
    );
    expect(explainError(reverted("MockUSD", "ERC20InsufficientAllowance", [who, 0n, 50_000_000n]), errorAbi)).toMatch(
      /^Insufficient allowance: the contract may spend 0 mUSD of your tokens, 50 mUSD is needed\. Approve first\.$/,
    );
  });

  it("decodes raw revert data found anywhere in the causes (wallets that only pass data on)", () => {
    const data = encodeErrorResult({ abi: abi("ChallengeManager"), errorName: "LivenessOver", args: [7n] });
    expect(decodeRevertData(data, errorAbi)).toBe("The dispute window of challenge #7 is over.");
    const rpcError = { code: 3, message: "execution reverted", data };
    expect(explainError(new Error("wrapped", { cause: rpcError }), errorAbi)).toBe("The dispute window of challenge #7 is over.");
    const nested = { code: -32603, message: "Internal error", data: { data } };
    expect(explainError(nested, errorAbi)).toBe("The dispute window of challenge #7 is over.");
    expect(decodeRevertData("0xdeadbeef", errorAbi)).toBeNull();
    expect(decodeRevertData("0x", errorAbi)).toBeNull();
  });

  it("falls back to the error's name in words for one it has no sentence for", () => {
    const item: AbiError = { type: "error", name: "SomethingOdd", inputs: [{ name: "copyId", type: "uint256" }] };
    expect(describeCustomError("SomethingOdd", [4n], item)).toBe("Something odd (copy id: 4).");
    expect(describeCustomError("ReentrancyGuardReentrantCall", [])).toBe("Reentrancy guard reentrant call.");
  });

  it("collects each error signature once across ABIs", () => {
    const names = errorAbi.map((e) => `${e.name}(${e.inputs.map((i) => i.type).join(",")})`);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toContain("UnknownModel(uint256)");
  });
});

describe("wallet and network conditions", () => {
  it("says a person rejected the request", () => {
    expect(explainError(new UserRejectedRequestError(new Error("User rejected")), errorAbi, CTX)).toBe("You rejected the request in your wallet.");
    expect(explainError({ code: 4001, message: "User denied transaction signature." }, errorAbi, CTX)).toBe("You rejected the request in your wallet.");
  });

  it("names the configured chain on a wrong network", () => {
    const chain = defineChain({ id: 31337, name: "OML local (Anvil)", nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [CTX.rpcUrl] } } });
    const message = explainError(new ChainMismatchError({ chain, currentChainId: 1 }), errorAbi, CTX);
    expect(message).toBe("Your wallet is on another network. Switch it to OML local (Anvil) (chain id 31337).");
    expect(explainError({ code: 4902, message: "Unrecognized chain ID" }, errorAbi, CTX)).toMatch(/Switch it to OML local/);
  });

  it("says there is not enough ETH for gas", () => {
    expect(explainError(new InsufficientFundsError(), errorAbi, CTX)).toBe("Insufficient funds: your account does not have enough ETH to pay for gas.");
    expect(explainError({ code: -32000, message: "insufficient funds for gas * price + value" }, errorAbi, CTX)).toMatch(/^Insufficient funds/);
  });

  it("says when the chain cannot be reached", () => {
    expect(explainError(new HttpRequestError({ url: CTX.rpcUrl, details: "fetch failed" }), errorAbi, CTX)).toBe(
      "Cannot reach the chain at http://127.0.0.1:18545. Is the node running?",
    );
  });

  it("says a wallet request is already open and a missing wallet", () => {
    expect(explainError({ code: -32002, message: "already pending" }, errorAbi)).toMatch(/already has a request open/);
    const missing = Object.assign(new Error("no wallet"), { name: "ProviderNotFound" });
    expect(explainError(missing, errorAbi)).toMatch(/No wallet found/);
  });

  it("keeps anything else readable", () => {
    expect(explainError(null)).toBe("Something went wrong (no details).");
    expect(explainError("plain words")).toBe("plain words");
    expect(explainError(new BaseError("Short message"))).toBe("Short message.");
    expect(explainError(new Error("Something specific"))).toBe("Something specific");
  });
});
