// Formatting helpers: token amounts, basis points, parts per billion, addresses, durations.
// Pure functions (unit-tested); every amount is a bigint in the token's smallest unit.

export const BPS = 10_000n;
export const PPB = 1_000_000_000n;

/** `1234567n, 6` → "1.234567"; trailing zeros trimmed, at most `maxFraction` digits (rounded down). */
export function formatUnitsTrimmed(value: bigint, decimals: number, maxFraction = decimals): string {
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const base = 10n ** BigInt(decimals);
  const whole = abs / base;
  let fraction = (abs % base).toString().padStart(decimals, "0").slice(0, maxFraction);
  fraction = fraction.replace(/0+$/, "");
  const wholeText = whole.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}${wholeText}${fraction ? `.${fraction}` : ""}`;
}

/** A token amount with its symbol: `formatToken(1500000n)` → "1.5 mUSD". */
export function formatToken(value: bigint, decimals = 6, symbol = "mUSD", maxFraction = 6): string {
  return `${formatUnitsTrimmed(value, decimals, maxFraction)} ${symbol}`;
}

/**
 * Parse a decimal string typed by a person into base units. Accepts "1", "1.5", "1,000.25";
 * throws an Error in words for anything else or for more decimals than the token has.
 */
export function parseTokenAmount(text: string, decimals = 6): bigint {
  const clean = text.trim().replace(/,/g, "");
  if (!/^\d+(\.\d*)?$|^\.\d+$/.test(clean)) throw new Error(`"${text}" is not an amount (use digits and one dot, e.g. 12.5)`);
  const [whole = "0", fraction = ""] = clean.split(".");
  if (fraction.length > decimals) throw new Error(`"${text}" has more than ${decimals} decimals`);
  return BigInt(whole || "0") * 10n ** BigInt(decimals) + BigInt(fraction.padEnd(decimals, "0") || "0");
}

/** 250 → "2.5%". */
export function formatBps(bps: bigint | number): string {
  return formatPercent(BigInt(bps), BPS);
}

/** 125_000_000 → "12.5%". */
export function formatPpb(ppb: bigint | number): string {
  return formatPercent(BigInt(ppb), PPB);
}

/** value/whole as a percent with at most 4 significant decimals, trailing zeros trimmed. */
export function formatPercent(value: bigint, whole: bigint): string {
  if (whole === 0n) return "0%";
  // 4 decimals of a percent = 1e6 scale.
  const scaled = (value * 100n * 10_000n + whole / 2n) / whole;
  return `${formatUnitsTrimmed(scaled, 4)}%`;
}

/** Parse "2.5" or "2.5%" into basis points (250). */
export function parsePercentToBps(text: string): number {
  const clean = text.trim().replace(/%$/, "").trim();
  if (!/^\d+(\.\d{0,2})?$/.test(clean)) throw new Error(`"${text}" is not a percentage with at most 2 decimals`);
  const bps = Math.round(Number(clean) * 100);
  if (bps > 10_000) throw new Error(`${text} is more than 100%`);
  return bps;
}

/** 0xf39F…2266 */
export function shortAddress(address: string): string {
  return address.length > 12 ? `${address.slice(0, 6)}…${address.slice(-4)}` : address;
}

export function shortHash(hash: string): string {
  return hash.length > 14 ? `${hash.slice(0, 10)}…${hash.slice(-6)}` : hash;
}

/** Seconds → "2d 3h", "5m 10s", "12s"; the two largest units. */
export function formatDuration(seconds: bigint | number): string {
  let s = Math.max(0, Math.floor(Number(seconds)));
  const units: [string, number][] = [["d", 86_400], ["h", 3_600], ["m", 60], ["s", 1]];
  const parts: string[] = [];
  for (const [label, size] of units) {
    if (s >= size || (label === "s" && parts.length === 0)) {
      parts.push(`${Math.floor(s / size)}${label}`);
      s %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

/** A countdown to `deadline` (unix seconds) from `now`: "in 4m 2s" or "passed 10s ago". */
export function formatCountdown(deadline: bigint | number, now: number): string {
  const delta = Number(deadline) - now;
  return delta > 0 ? `in ${formatDuration(delta)}` : delta === 0 ? "now" : `passed ${formatDuration(-delta)} ago`;
}

/** Unix seconds → "2026-11-25 14:03 UTC". */
export function formatTimestamp(seconds: bigint | number): string {
  if (Number(seconds) === 0) return "—";
  const d = new Date(Number(seconds) * 1000);
  return `${d.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** Shares are 1e18 per model → "42.5%". */
export function formatShares(shares: bigint, total = 10n ** 18n): string {
  return formatPercent(shares, total);
}

/** Split a custom error / enum name into words: "CollateralTooLow" → "collateral too low". */
export function words(identifier: string): string {
  return identifier
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1 $2")
    .toLowerCase();
}

/** A plausible IPFS CID (v0 "Qm…" base58 or v1 base32 "b…"); not a full multiformats check. */
export function isLikelyCid(text: string): boolean {
  return /^Qm[1-9A-HJ-NP-Za-km-z]{44}$/.test(text) || /^b[a-z2-7]{50,}$/.test(text);
}
