// Chain reads shared by the pages. ABIs are loaded at runtime, so results are typed here, at
// the edge, against the interfaces in contracts/interfaces/I*.sol.

import type { Address, Hash } from "viem";
import type { App } from "./app";
import type { ContractName } from "./lib/config";
import type { FamilyNode } from "./lib/tree";
import { fetchManifest } from "./lib/ipfs";
import { unpackLineage, type LineageEntry, type ParentLineage } from "./lib/royalty";

export interface ModelInfo {
  pricePerCall: bigint;
  minCollateral: bigint;
  licensingOpen: boolean;
  depth: number;
  royaltyStackBps: number;
  ancestorCount: number;
  registeredAt: bigint;
}

export interface ModelSummary {
  id: bigint;
  owner: Address;
  registrant: Address;
  manifestCID: string;
  parents: { id: bigint; shareBps: number }[];
  info: ModelInfo;
  versions: bigint;
  feesEarned: bigint;
  name: string | null;
}

export interface Version {
  weightsCID: string;
  manifestCID: string;
  publishedAt: bigint;
  accepted: boolean;
}

export interface Copy {
  host: Address;
  state: number;
  modelId: number;
  version: number;
  fpCount: number;
  openChallenges: number;
  collateral: bigint;
  slashed: bigint;
  requestedAt: bigint;
  deliveredAt: bigint;
  exitRequestedAt: bigint;
  fpRoot: Hash;
}

export const COPY_STATES = ["none", "requested", "delivered (active)", "exiting", "withdrawn"] as const;

export interface EventLog<T> {
  args: T;
  blockNumber: bigint;
  transactionHash: Hash;
  logIndex: number;
}

export async function events<T>(app: App, contract: ContractName, eventName: string, args?: Record<string, unknown>): Promise<EventLog<T>[]> {
  const logs = await app.client.getContractEvents({
    address: app.address(contract),
    abi: app.abi(contract),
    eventName,
    args,
    fromBlock: app.deployment.deployBlock,
    toBlock: "latest",
  } as never);
  return (logs as unknown as EventLog<T>[]).map((l) => ({ args: l.args, blockNumber: l.blockNumber, transactionHash: l.transactionHash, logIndex: l.logIndex }));
}

interface RegisteredArgs {
  modelId: bigint;
  owner: Address;
  parents: readonly bigint[];
  shareBps: readonly number[];
  manifestCID: string;
}

/** Every registered model with what the list and the tree show. */
export async function listModels(app: App): Promise<ModelSummary[]> {
  const registered = await events<RegisteredArgs>(app, "ModelRegistry", "ModelRegistered");
  return Promise.all(
    registered.map(async ({ args }) => {
      const id = args.modelId;
      const [info, owner, versions, feesEarned] = await Promise.all([
        app.read<ModelInfo>("ModelRegistry", "modelInfo", [id]),
        app.read<Address>("ModelRegistry", "ownerOf", [id]),
        app.read<bigint>("ModelRegistry", "versionCount", [id]),
        app.read<bigint>("UsageLedger", "lineageAccrued", [id]),
      ]);
      return {
        id,
        owner,
        registrant: args.owner,
        manifestCID: args.manifestCID,
        parents: args.parents.map((p, i) => ({ id: p, shareBps: Number(args.shareBps[i] ?? 0) })),
        info,
        versions,
        feesEarned,
        name: null,
      };
    }),
  );
}

/** Fill in names from the manifests on IPFS (best effort; a missing manifest keeps the id). */
export async function withNames(app: App, models: ModelSummary[], onEach?: () => void): Promise<void> {
  await Promise.all(
    models.map(async (m) => {
      const result = await fetchManifest(app.config.ipfsGateway, m.manifestCID);
      if (result.ok) {
        m.name = result.manifest.name;
        onEach?.();
      }
    }),
  );
}

export function modelLabel(m: Pick<ModelSummary, "id" | "name">): string {
  return m.name ? `#${m.id} ${m.name}` : `Model #${m.id}`;
}

export function familyNodes(models: readonly ModelSummary[]): FamilyNode[] {
  return models.map((m) => ({ id: m.id, label: modelLabel(m), parents: m.parents }));
}

export async function versionsOf(app: App, modelId: bigint, count: bigint): Promise<Version[]> {
  const indices = Array.from({ length: Number(count) }, (_, i) => BigInt(i));
  return Promise.all(indices.map((v) => app.read<Version>("ModelRegistry", "getVersion", [modelId, v])));
}

export async function lineageOf(app: App, modelId: bigint): Promise<LineageEntry[]> {
  const packed = await app.read<readonly bigint[]>("ModelRegistry", "lineageTable", [modelId]);
  return unpackLineage(packed);
}

/** What computeRoyaltyStack needs to know about candidate parents. */
export async function parentLineages(app: App, ids: readonly bigint[]): Promise<Map<bigint, ParentLineage>> {
  const out = new Map<bigint, ParentLineage>();
  await Promise.all(
    ids.map(async (id) => {
      try {
        const [table, info] = await Promise.all([lineageOf(app, id), app.read<ModelInfo>("ModelRegistry", "modelInfo", [id])]);
        out.set(id, { table, depth: Number(info.depth) });
      } catch {
        // Unknown model: computeRoyaltyStack reports it in words.
      }
    }),
  );
  return out;
}

export async function tokenBalance(app: App, account: Address): Promise<{ balance: bigint; allowance: (spender: ContractName) => Promise<bigint> }> {
  const balance = await app.read<bigint>("MockUSD", "balanceOf", [account]);
  return { balance, allowance: (spender) => app.read<bigint>("MockUSD", "allowance", [account, app.address(spender)]) };
}

export async function latestTimestamp(app: App): Promise<number> {
  const block = await app.client.getBlock({ blockTag: "latest" });
  return Number(block.timestamp);
}
