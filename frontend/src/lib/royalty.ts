// Royalty-stack computation: the flattened table a derivative will get at registration.
// Mirrors ModelRegistry._merge exactly (same integer rounding) so the person sees, before
// signing, the table the contract will store. Weights are parts per billion (PPB) of the
// model's lineage revenue; the model itself gets PPB minus what its ancestors get.

import { BPS, PPB } from "./format";

export const MAX_PARENTS = 4;
export const MAX_ANCESTORS = 32;
export const MAX_DEPTH = 8;

export interface LineageEntry {
  id: bigint;
  weightPpb: bigint;
}

/** What the registry knows about an existing model (from `lineageOf` and `modelInfo.depth`). */
export interface ParentLineage {
  /** Ancestors first, the model itself last (as `lineageOf` returns them). */
  table: LineageEntry[];
  depth: number;
}

export interface ParentChoice {
  id: bigint;
  shareBps: number;
}

export interface RoyaltyStack {
  /** Ancestors in the contract's order, then the new model (`id` = `selfId`). */
  entries: LineageEntry[];
  stackBps: number;
  depth: number;
  /** Problems that would make `registerModel` revert, in words; empty when it would succeed. */
  problems: string[];
}

/** Unpack `lineageTable` entries `(ancestorId << 32) | weightPpb`. */
export function unpackLineage(packed: readonly bigint[]): LineageEntry[] {
  return packed.map((entry) => ({ id: entry >> 32n, weightPpb: entry & 0xffffffffn }));
}

/**
 * The royalty stack a new model with `parents` would get.
 * @param lineages the parents' current tables (missing ones are reported as unknown models)
 * @param selfId the id the new model will get (`nextModelId`), for the last entry
 * @param maxRoyaltyStackBps the cap the registrant passes (default: 100%)
 */
export function computeRoyaltyStack(
  parents: readonly ParentChoice[],
  lineages: ReadonlyMap<bigint, ParentLineage>,
  selfId: bigint,
  maxRoyaltyStackBps = 10_000,
): RoyaltyStack {
  const problems: string[] = [];
  if (parents.length > MAX_PARENTS) problems.push(`A model can have at most ${MAX_PARENTS} parents (you picked ${parents.length}).`);
  const order: bigint[] = [];
  const weights = new Map<bigint, bigint>();
  let stack = 0;
  let depth = 0;
  const seen = new Set<bigint>();
  for (const parent of parents) {
    if (seen.has(parent.id)) {
      problems.push(`Model #${parent.id} is listed twice as a parent.`);
      continue;
    }
    seen.add(parent.id);
    if (parent.id === selfId) problems.push(`A model cannot be its own parent (#${parent.id}).`);
    const lineage = lineages.get(parent.id);
    if (!lineage) {
      problems.push(`Model #${parent.id} does not exist.`);
      continue;
    }
    if (!Number.isInteger(parent.shareBps) || parent.shareBps <= 0) {
      problems.push(`The share for parent #${parent.id} must be more than 0%.`);
      continue;
    }
    if (parent.shareBps > 0xffff) problems.push(`The share for parent #${parent.id} is too large.`);
    stack += parent.shareBps;
    depth = Math.max(depth, lineage.depth + 1);
    for (const entry of lineage.table) {
      if (!weights.has(entry.id)) {
        order.push(entry.id);
        weights.set(entry.id, 0n);
      }
      weights.set(entry.id, (weights.get(entry.id) ?? 0n) + (entry.weightPpb * BigInt(parent.shareBps)) / BPS);
    }
  }
  if (order.length > MAX_ANCESTORS) problems.push(`The family would have ${order.length} ancestors; the most is ${MAX_ANCESTORS}.`);
  if (stack > 10_000) problems.push(`The parents' shares add up to ${stack / 100}%, more than 100%.`);
  else if (stack > maxRoyaltyStackBps)
    problems.push(`The parents' shares add up to ${stack / 100}%, above your limit of ${maxRoyaltyStackBps / 100}%.`);
  if (depth > MAX_DEPTH) problems.push(`The family tree would be ${depth} generations deep; the most is ${MAX_DEPTH}.`);

  const entries = order.map((id) => ({ id, weightPpb: weights.get(id) ?? 0n }));
  const given = entries.reduce((sum, e) => sum + e.weightPpb, 0n);
  entries.push({ id: selfId, weightPpb: given > PPB ? 0n : PPB - given });
  return { entries, stackBps: stack, depth, problems };
}

/** Who earns what from `fee` of lineage revenue (rounded down per entry, as FeeRouter does). */
export function splitLineageRevenue(entries: readonly LineageEntry[], fee: bigint): { id: bigint; amount: bigint }[] {
  return entries.map((e) => ({ id: e.id, amount: (fee * e.weightPpb) / PPB }));
}
