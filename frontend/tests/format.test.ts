import { describe, expect, it } from "vitest";
import {
  formatBps,
  formatCountdown,
  formatDuration,
  formatPercent,
  formatPpb,
  formatShares,
  formatTimestamp,
  formatToken,
  formatUnitsTrimmed,
  isLikelyCid,
  parsePercentToBps,
  parseTokenAmount,
  shortAddress,
  shortHash,
  words,
} from "../src/lib/format";

describe("token amounts", () => {
  it("formats base units with trimmed decimals and thousands separators", () => {
    expect(formatUnitsTrimmed(1_234_567n, 6)).toBe("1.234567");
    expect(formatUnitsTrimmed(1_500_000n, 6)).toBe("1.5");
    expect(formatUnitsTrimmed(0n, 6)).toBe("0");
    expect(formatUnitsTrimmed(1_000_000_000_000n, 6)).toBe("1,000,000");
    expect(formatUnitsTrimmed(-2_500_000n, 6)).toBe("-2.5");
    expect(formatUnitsTrimmed(1_999_999n, 6, 2)).toBe("1.99"); // rounds down, never up
  });

  it("adds the symbol", () => {
    expect(formatToken(1_500_000n)).toBe("1.5 mUSD");
    expect(formatToken(1_000n)).toBe("0.001 mUSD");
    expect(formatToken(17_000n)).toBe("0.017 mUSD");
    expect(formatToken(10n ** 18n, 18, "ETH")).toBe("1 ETH");
  });

  it("parses what a person types", () => {
    expect(parseTokenAmount("1")).toBe(1_000_000n);
    expect(parseTokenAmount("0.001")).toBe(1_000n);
    expect(parseTokenAmount(" 1,000.25 ")).toBe(1_000_250_000n);
    expect(parseTokenAmount(".5")).toBe(500_000n);
    expect(parseTokenAmount("10.")).toBe(10_000_000n);
  });

  it("refuses what is not an amount, in words", () => {
    expect(() => parseTokenAmount("abc")).toThrow(/not an amount/);
    expect(() => parseTokenAmount("-1")).toThrow(/not an amount/);
    expect(() => parseTokenAmount("1.2.3")).toThrow(/not an amount/);
    expect(() => parseTokenAmount("0.0000001")).toThrow(/more than 6 decimals/);
  });

  it("round-trips", () => {
    for (const value of [0n, 1n, 999_999n, 1_000_000n, 123_456_789_012n])
      expect(parseTokenAmount(formatUnitsTrimmed(value, 6))).toBe(value);
  });
});

describe("percentages", () => {
  it("formats basis points and parts per billion", () => {
    expect(formatBps(250)).toBe("2.5%");
    expect(formatBps(2000n)).toBe("20%");
    expect(formatBps(10_000)).toBe("100%");
    expect(formatPpb(125_000_000n)).toBe("12.5%");
    expect(formatPpb(70_000_000n)).toBe("7%");
    expect(formatPpb(1n)).toBe("0%"); // below 4 decimals of a percent
    expect(formatPercent(1n, 3n)).toBe("33.3333%");
    expect(formatPercent(5n, 0n)).toBe("0%");
    expect(formatShares(10n ** 18n / 4n)).toBe("25%");
  });

  it("parses a percentage into basis points", () => {
    expect(parsePercentToBps("20")).toBe(2000);
    expect(parsePercentToBps("2.5%")).toBe(250);
    expect(parsePercentToBps("0.01")).toBe(1);
    expect(parsePercentToBps("100")).toBe(10_000);
    expect(() => parsePercentToBps("100.01")).toThrow(/more than 100%/);
    expect(() => parsePercentToBps("1.234")).toThrow(/at most 2 decimals/);
    expect(() => parsePercentToBps("ten")).toThrow(/not a percentage/);
  });
});

describe("addresses, hashes, names", () => {
  it("shortens", () => {
    expect(shortAddress("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")).toBe("0xf39F…2266");
    expect(shortAddress("0x1234")).toBe("0x1234");
    expect(shortHash(`0x${"ab".repeat(32)}`)).toBe("0xabababab…ababab");
  });

  it("turns identifiers into words", () => {
    expect(words("CollateralTooLow")).toBe("collateral too low");
    expect(words("ERC20InsufficientBalance")).toBe("erc20 insufficient balance");
    expect(words("NotHost")).toBe("not host");
  });

  it("recognises CIDs", () => {
    expect(isLikelyCid("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o")).toBe(true);
    expect(isLikelyCid("bafkreibnzwetcn7r2s5kdqr6wdfp6uavcr35i4m57lx5fgt7kj6dxlr5xa")).toBe(true);
    expect(isLikelyCid("hello")).toBe(false);
  });
});

describe("time", () => {
  it("formats durations with the two largest units", () => {
    expect(formatDuration(0)).toBe("0s");
    expect(formatDuration(12)).toBe("12s");
    expect(formatDuration(310)).toBe("5m 10s");
    expect(formatDuration(900)).toBe("15m");
    expect(formatDuration(3 * 86_400 + 3 * 3600 + 59)).toBe("3d 3h");
    expect(formatDuration(-5)).toBe("0s");
  });

  it("counts down to a deadline", () => {
    expect(formatCountdown(1_000, 880)).toBe("in 2m");
    expect(formatCountdown(1_000, 1_000)).toBe("now");
    expect(formatCountdown(1_000n, 1_010)).toBe("passed 10s ago");
  });

  it("prints timestamps in UTC", () => {
    expect(formatTimestamp(0)).toBe("—");
    expect(formatTimestamp(1_800_000_000n)).toBe("2027-01-15 08:00 UTC");
  });
});
