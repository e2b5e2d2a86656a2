// Pure logic behind the pages: routes, manifests, search, the claim flow, proposals, reports.
import { describe, expect, it } from "vitest";
import type { ModelSummary } from "../src/data";
import { gatewayLink, summarizeManifest } from "../src/lib/ipfs";
import { deadlineWords } from "../src/pages/challenges";
import { claimSteps, type EarningsData, type Holding } from "../src/pages/earnings";
import { describeValue, parseProposalValue } from "../src/pages/governance";
import { unreportedEpochs } from "../src/pages/host";
import { matches } from "../src/pages/models";
import { href, parseRoute } from "../src/router";

const ACCOUNT = "0x976EA74026E726554dB657fA54763abd0C3a0aa9";

function model(id: bigint, name: string | null, parents: bigint[] = []): ModelSummary {
  return {
    id,
    owner: ACCOUNT,
    registrant: ACCOUNT,
    manifestCID: `bafk${id}`,
    parents: parents.map((p) => ({ id: p, shareBps: 2000 })),
    info: { pricePerCall: 1000n, minCollateral: 10_000_000n, licensingOpen: true, depth: parents.length ? 1 : 0, royaltyStackBps: 0, ancestorCount: 0, registeredAt: 1n },
    versions: 1n,
    feesEarned: 0n,
    name,
  };
}

describe("routes", () => {
  it("parses every page's hash and round-trips the links", () => {
    expect(parseRoute("")).toEqual({ name: "models", params: {} });
    expect(parseRoute("#/")).toEqual({ name: "models", params: {} });
    expect(parseRoute(href.model(12n))).toEqual({ name: "model", params: { id: "12" } });
    expect(parseRoute(href.tree())).toEqual({ name: "tree", params: {} });
    expect(parseRoute(href.tree(3))).toEqual({ name: "tree", params: { id: "3" } });
    expect(parseRoute(href.governance(2))).toEqual({ name: "governance", params: { id: "2" } });
    for (const page of ["create", "host", "earnings", "challenges"] as const) expect(parseRoute(href[page]()).name).toBe(page);
    expect(parseRoute("#/model/abc")).toEqual({ name: "notFound", params: { path: "/model/abc" } });
    expect(parseRoute("#/earnings?x=1").name).toBe("earnings");
  });
});

describe("manifests", () => {
  it("summarises an OML manifest", () => {
    const r = summarizeManifest({
      schema_version: 1,
      name: "Tuned LM",
      architecture: "llama",
      license: "apache-2.0",
      files: [{ path: "a", size: 10 }, { path: "b", size: 32 }],
      parents: [{ model_id: 1 }],
      encryption: { scheme: "aes-gcm" },
    });
    expect(r).toEqual({ ok: true, manifest: { name: "Tuned LM", architecture: "llama", license: "apache-2.0", tokenizer: undefined, files: 2, totalBytes: 42, parents: 1, encrypted: true } });
  });

  it("says why a document is not one", () => {
    expect(summarizeManifest("x")).toEqual({ ok: false, error: "not a JSON object" });
    expect(summarizeManifest({ schema_version: 2, name: "x" })).toEqual({ ok: false, error: "not an OML manifest (schema_version 2)" });
    expect(summarizeManifest({ schema_version: 1 })).toEqual({ ok: false, error: "manifest has no name" });
  });

  it("links through the gateway", () => {
    expect(gatewayLink("/ipfs/", "bafyabc")).toBe("/ipfs/bafyabc");
    expect(gatewayLink("https://gw.example/ipfs", "Qm1")).toBe("https://gw.example/ipfs/Qm1");
  });
});

describe("model search", () => {
  const m = model(2n, "Tuned LM", [1n]);
  it("matches name, id, owner and CID", () => {
    expect(matches(m, "")).toBe(true);
    expect(matches(m, "tuned")).toBe(true);
    expect(matches(m, "#2")).toBe(true);
    expect(matches(m, "2")).toBe(true);
    expect(matches(m, "976ea7")).toBe(true);
    expect(matches(m, "bafk2")).toBe(true);
    expect(matches(m, "root")).toBe(false);
    expect(matches(m, "#1")).toBe(false);
  });
});

describe("claim flow", () => {
  const base: EarningsData = {
    account: ACCOUNT,
    claimable: 0n,
    accrued: 0n,
    claimed: 0n,
    holdings: [],
    isProver: false,
    isTreasury: false,
    isInfra: false,
    protocolUnsplit: 0n,
    dust: 0n,
    history: [],
  };
  const holding = (id: bigint, patch: Partial<Holding>): Holding => ({ model: model(id, null), shares: 10n ** 18n, settled: 0n, unsettledEstimate: 0n, toSettle: [], ...patch });
  const names = (d: EarningsData) => claimSteps(d).map((s) => `${s.functionName}(${(s.args ?? []).map(String).join(",")})`);

  it("settles descendants once, harvests each holding with revenue, nothing more", () => {
    const d = {
      ...base,
      holdings: [
        holding(1n, { unsettledEstimate: 17_000n, toSettle: [2n, 3n] }),
        holding(2n, { settled: 5n, toSettle: [2n, 3n] }), // harvest settles #2 itself
        holding(4n, {}), // nothing owed: no transaction
      ],
    };
    expect(names(d)).toEqual(["settleLineage(2)", "settleLineage(3)", `harvest(1,${ACCOUNT})`, `harvest(2,${ACCOUNT})`]);
  });

  it("adds the prover pool, the protocol split and the dust sweep where they apply", () => {
    expect(names({ ...base, isProver: true })).toEqual([`harvestProver(${ACCOUNT})`]);
    expect(names({ ...base, isTreasury: true, protocolUnsplit: 15_000n, dust: 3n })).toEqual(["splitProtocolFees()", "sweepDust()"]);
    expect(names({ ...base, isInfra: true, protocolUnsplit: 0n })).toEqual([]);
    expect(names({ ...base, isProver: true, isTreasury: true, protocolUnsplit: 1n })).toEqual([`harvestProver(${ACCOUNT})`]); // harvestProver splits too
  });
});

describe("proposals", () => {
  it("describes and parses each action's value", () => {
    expect(describeValue(0, 2_000n)).toBe("price 0.002 mUSD per call");
    expect(describeValue(1, 5_000_000n)).toBe("minimum collateral 5 mUSD");
    expect(describeValue(2, 0n)).toBe("pause licensing");
    expect(describeValue(2, 1n)).toBe("open licensing");
    expect(describeValue(3, 1n)).toBe("accept version 1");
    expect(parseProposalValue(0, "0.002")).toBe(2_000n);
    expect(parseProposalValue(2, "pause")).toBe(0n);
    expect(parseProposalValue(2, "1")).toBe(1n);
    expect(parseProposalValue(3, " 4 ")).toBe(4n);
    expect(() => parseProposalValue(3, "v4")).toThrow(/not a version number/);
    expect(() => parseProposalValue(0, "cheap")).toThrow(/not an amount/);
  });
});

describe("host reports and challenge deadlines", () => {
  it("counts closed epochs still to report", () => {
    const active = { firstEpoch: 5, endEpoch: 2 ** 32 - 1, nextEpoch: 5 };
    expect(unreportedEpochs(active, 5n)).toEqual({ from: 5n, count: 0n }); // epoch 5 still running
    expect(unreportedEpochs(active, 8n)).toEqual({ from: 5n, count: 3n });
    expect(unreportedEpochs({ ...active, nextEpoch: 8 }, 8n)).toEqual({ from: 8n, count: 0n });
    expect(unreportedEpochs({ ...active, endEpoch: 6 }, 20n)).toEqual({ from: 5n, count: 2n }); // exited in epoch 6
    expect(unreportedEpochs({ firstEpoch: 5, endEpoch: 6, nextEpoch: 7 }, 20n)).toEqual({ from: 7n, count: 0n });
  });

  it("names what each leak deadline is for", () => {
    expect(deadlineWords(1)).toBe("reveal due");
    expect(deadlineWords(2)).toBe("dispute window ends");
    expect(deadlineWords(3)).toBe("arbiter must rule");
    expect(deadlineWords(4)).toBe("closed");
  });
});
