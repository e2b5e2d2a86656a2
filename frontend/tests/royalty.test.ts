import { describe, expect, it } from "vitest";
import {
  computeRoyaltyStack,
  MAX_ANCESTORS,
  splitLineageRevenue,
  unpackLineage,
  type LineageEntry,
  type ParentLineage,
} from "../src/lib/royalty";

const PPB = 1_000_000_000n;
const pct = (p: number) => (BigInt(Math.round(p * 1e6)) * PPB) / 100_000_000n; // percent → ppb

/** A registry in memory: register models one by one, as the contract would store them. */
class Registry {
  readonly lineages = new Map<bigint, ParentLineage>();
  next = 1n;

  register(parents: { id: bigint; shareBps: number }[] = [], max = 10_000): { id: bigint; table: LineageEntry[]; problems: string[] } {
    const id = this.next;
    const result = computeRoyaltyStack(parents, this.lineages, id, max);
    if (!result.problems.length) {
      this.lineages.set(id, { table: result.entries, depth: result.depth });
      this.next++;
    }
    return { id, table: result.entries, problems: result.problems };
  }
}

const weights = (table: LineageEntry[]) => Object.fromEntries(table.map((e) => [String(e.id), e.weightPpb]));

describe("computeRoyaltyStack", () => {
  it("gives a root model all of its lineage revenue", () => {
    const r = new Registry().register();
    expect(r.problems).toEqual([]);
    expect(r.table).toEqual([{ id: 1n, weightPpb: PPB }]);
  });

  it("matches the docs' example: A root; B = A@20%; C = B@10% + A@5% → {A 7%, B 8%, C 85%}", () => {
    const reg = new Registry();
    const a = reg.register();
    const b = reg.register([{ id: a.id, shareBps: 2000 }]);
    expect(weights(b.table)).toEqual({ 1: pct(20), 2: pct(80) });
    const c = reg.register([
      { id: b.id, shareBps: 1000 },
      { id: a.id, shareBps: 500 },
    ]);
    expect(c.problems).toEqual([]);
    expect(c.table.map((e) => e.id)).toEqual([1n, 2n, 3n]); // ancestors in the contract's order, self last
    expect(weights(c.table)).toEqual({ 1: pct(7), 2: pct(8), 3: pct(85) });
    const stack = computeRoyaltyStack([{ id: 2n, shareBps: 1000 }, { id: 1n, shareBps: 500 }], reg.lineages, 3n);
    expect(stack.stackBps).toBe(1500);
    expect(stack.depth).toBe(2);
  });

  it("rounds down per entry like the contract and leaves the remainder to the model itself", () => {
    const reg = new Registry();
    reg.register();
    const b = reg.register([{ id: 1n, shareBps: 3333 }]);
    const c = reg.register([{ id: b.id, shareBps: 3333 }]);
    // A: 1e9·3333/1e4 = 333,300,000 → ·3333/1e4 = 111,088,890 (floor of 111,088,890.0)
    expect(weights(c.table)["1"]).toBe((((PPB * 3333n) / 10_000n) * 3333n) / 10_000n);
    expect(c.table.reduce((s, e) => s + e.weightPpb, 0n)).toBe(PPB);
  });

  it("reports what would make registerModel revert, in words", () => {
    const reg = new Registry();
    reg.register();
    reg.register();
    const lineages = reg.lineages;
    expect(computeRoyaltyStack([{ id: 9n, shareBps: 100 }], lineages, 3n).problems).toEqual(["Model #9 does not exist."]);
    expect(computeRoyaltyStack([{ id: 1n, shareBps: 0 }], lineages, 3n).problems[0]).toMatch(/must be more than 0%/);
    expect(computeRoyaltyStack([{ id: 1n, shareBps: 100 }, { id: 1n, shareBps: 100 }], lineages, 3n).problems).toContain("Model #1 is listed twice as a parent.");
    expect(computeRoyaltyStack([{ id: 1n, shareBps: 6000 }, { id: 2n, shareBps: 6000 }], lineages, 3n).problems[0]).toMatch(/add up to 120%, more than 100%/);
    expect(computeRoyaltyStack([{ id: 1n, shareBps: 3000 }], lineages, 3n, 2500).problems[0]).toMatch(/above your limit of 25%/);
    const five = [1n, 2n, 1n, 2n, 1n].map((id, i) => ({ id: id + BigInt(i) * 0n, shareBps: 10 }));
    expect(computeRoyaltyStack(five, lineages, 3n).problems[0]).toMatch(/at most 4 parents/);
  });

  it("refuses a family deeper than 8 generations", () => {
    const reg = new Registry();
    let last = reg.register().id;
    for (let depth = 1; depth <= 8; depth++) {
      const r = reg.register([{ id: last, shareBps: 100 }]);
      expect(r.problems).toEqual([]);
      last = r.id;
    }
    expect(reg.lineages.get(last)?.depth).toBe(8);
    expect(computeRoyaltyStack([{ id: last, shareBps: 100 }], reg.lineages, reg.next).problems[0]).toMatch(/9 generations deep; the most is 8/);
  });

  it("refuses more than 32 flattened ancestors", () => {
    // 33 roots merged through 4-parent derivatives: the 9th-level merge would list 33 ancestors.
    const reg = new Registry();
    const roots = Array.from({ length: 33 }, () => reg.register().id);
    const groups: bigint[] = [];
    for (let i = 0; i < 32; i += 4) groups.push(reg.register(roots.slice(i, i + 4).map((id) => ({ id, shareBps: 100 }))).id);
    const left = reg.register(groups.slice(0, 4).map((id) => ({ id, shareBps: 100 })));
    const right = reg.register([...groups.slice(4, 7), roots[32] as bigint].map((id) => ({ id, shareBps: 100 })));
    expect(left.problems).toEqual([]);
    expect(right.problems).toEqual([]);
    const both = computeRoyaltyStack([{ id: left.id, shareBps: 100 }, { id: right.id, shareBps: 100 }], reg.lineages, reg.next);
    expect(both.entries.length - 1).toBeGreaterThan(MAX_ANCESTORS);
    expect(both.problems.join(" ")).toMatch(/ancestors; the most is 32/);
  });

  it("keeps every table whole over random families (fuzz)", () => {
    let seed = 42;
    const rand = (n: number) => {
      // mulberry32: small, deterministic, good enough to pick parents and shares
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) % n;
    };
    for (let round = 0; round < 20; round++) {
      const reg = new Registry();
      reg.register();
      for (let m = 0; m < 25; m++) {
        const existing = Number(reg.next - 1n);
        const count = rand(Math.min(4, existing) + 1);
        const picked = new Set<bigint>();
        while (picked.size < count) picked.add(BigInt(1 + rand(existing)));
        const parents = [...picked].map((id) => ({ id, shareBps: 1 + rand(2000) }));
        const r = reg.register(parents);
        if (r.problems.length) continue; // too deep / too many ancestors: refused, like the contract
        const sum = r.table.reduce((s, e) => s + e.weightPpb, 0n);
        expect(sum).toBe(PPB);
        expect(r.table[r.table.length - 1]?.id).toBe(r.id);
        expect(new Set(r.table.map((e) => e.id)).size).toBe(r.table.length);
        // The ancestors together get at most the parents' total share (rounding only lowers it).
        const stack = parents.reduce((s, p) => s + p.shareBps, 0);
        const ancestors = sum - (r.table[r.table.length - 1]?.weightPpb ?? 0n);
        expect(ancestors <= (BigInt(stack) * PPB) / 10_000n).toBe(true);
      }
    }
  });
});

describe("lineage helpers", () => {
  it("unpacks the registry's packed table", () => {
    const packed = [(1n << 32n) | 70_000_000n, (2n << 32n) | 80_000_000n, (3n << 32n) | 850_000_000n];
    expect(unpackLineage(packed)).toEqual([
      { id: 1n, weightPpb: 70_000_000n },
      { id: 2n, weightPpb: 80_000_000n },
      { id: 3n, weightPpb: 850_000_000n },
    ]);
  });

  it("splits lineage revenue like settleLineage (rounded down per entry)", () => {
    const table = [
      { id: 1n, weightPpb: 200_000_000n },
      { id: 2n, weightPpb: 800_000_000n },
    ];
    expect(splitLineageRevenue(table, 85_000n)).toEqual([
      { id: 1n, amount: 17_000n },
      { id: 2n, amount: 68_000n },
    ]);
    const odd = splitLineageRevenue([{ id: 1n, weightPpb: 333_333_333n }, { id: 2n, weightPpb: 666_666_667n }], 10n);
    expect(odd.map((o) => o.amount)).toEqual([3n, 6n]); // 1 unit of dust, as the contract counts it
  });
});
