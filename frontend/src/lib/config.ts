// Runtime configuration: /config.json (RPC, chain, IPFS gateway) and the deployment record
// the deploy script writes (addresses + ABI files). Nothing here is baked in at build time,
// so a re-deploy or another port needs a reload, not a rebuild.

import { getAddress, type Abi, type Address } from "viem";

export const CONTRACT_NAMES = ["ModelRegistry", "AccessManager", "UsageLedger", "ChallengeManager", "ModelGovernor", "MockUSD"] as const;
export type ContractName = (typeof CONTRACT_NAMES)[number];

export interface RuntimeConfig {
  rpcUrl: string;
  chainId: number;
  chainName: string;
  deployment: string;
  ipfsGateway: string;
  confirmations: number;
  pollingIntervalMs: number;
}

export interface DeploymentRecord {
  network: string;
  chainId: number;
  deployBlock: number;
  contracts: Record<string, { address: string; abi: string }>;
  roles: Record<string, string>;
  params?: Record<string, number>;
}

export interface Deployment {
  network: string;
  chainId: number;
  deployBlock: bigint;
  contracts: Record<ContractName, { address: Address; abi: Abi }>;
  roles: Record<string, Address>;
  params: Record<string, number>;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

function need<T>(value: T | undefined | null, what: string): T {
  if (value === undefined || value === null) throw new ConfigError(`${what} is missing`);
  return value;
}

export function parseRuntimeConfig(raw: unknown): RuntimeConfig {
  if (!raw || typeof raw !== "object") throw new ConfigError("config.json is not a JSON object");
  const c = raw as Partial<RuntimeConfig>;
  const rpcUrl = need(c.rpcUrl, "config.json rpcUrl");
  if (!/^https?:\/\//.test(rpcUrl)) throw new ConfigError(`config.json rpcUrl "${rpcUrl}" is not an http(s) URL`);
  const chainId = Number(need(c.chainId, "config.json chainId"));
  if (!Number.isInteger(chainId) || chainId <= 0) throw new ConfigError(`config.json chainId "${String(c.chainId)}" is not a chain id`);
  return {
    rpcUrl,
    chainId,
    chainName: c.chainName ?? `chain ${chainId}`,
    deployment: need(c.deployment, "config.json deployment"),
    ipfsGateway: (c.ipfsGateway ?? "/ipfs/").replace(/\/?$/, "/"),
    confirmations: Math.max(1, Number(c.confirmations ?? 1)),
    pollingIntervalMs: Math.max(100, Number(c.pollingIntervalMs ?? 1000)),
  };
}

/** Check the deployment record's shape; ABIs are loaded separately (see `loadDeployment`). */
export function parseDeploymentRecord(raw: unknown, expectedChainId: number): DeploymentRecord {
  if (!raw || typeof raw !== "object") throw new ConfigError("The deployment file is not a JSON object");
  const d = raw as Partial<DeploymentRecord>;
  const contracts = need(d.contracts, "deployment contracts");
  for (const name of CONTRACT_NAMES) {
    const entry = contracts[name];
    if (!entry?.address || !entry.abi) throw new ConfigError(`The deployment has no ${name} (address and abi path)`);
  }
  const chainId = Number(need(d.chainId, "deployment chainId"));
  if (chainId !== expectedChainId)
    throw new ConfigError(`The deployment is for chain ${chainId} but the app is configured for chain ${expectedChainId}`);
  return {
    network: d.network ?? "unknown",
    chainId,
    deployBlock: Number(d.deployBlock ?? 0),
    contracts,
    roles: d.roles ?? {},
    params: d.params ?? {},
  };
}

/** Map the record's ABI path ("deployments/abi/X.json") to the URL the server exposes. */
export function abiUrl(path: string): string {
  const clean = path.replace(/^\.?\//, "");
  return clean.startsWith("deployments/") ? `/${clean}` : `/deployments/${clean}`;
}

type FetchJson = (url: string) => Promise<unknown>;

export const fetchJson: FetchJson = async (url) => {
  let response: Response;
  try {
    response = await fetch(url, { cache: "no-store" });
  } catch (error) {
    throw new ConfigError(`Cannot load ${url}: ${(error as Error).message}`);
  }
  if (!response.ok) throw new ConfigError(`Cannot load ${url}: HTTP ${response.status}${response.status === 404 ? " (is the protocol deployed?)" : ""}`);
  try {
    return await response.json();
  } catch {
    throw new ConfigError(`${url} is not valid JSON`);
  }
};

export async function loadDeployment(config: RuntimeConfig, get: FetchJson = fetchJson): Promise<Deployment> {
  const record = parseDeploymentRecord(await get(config.deployment), config.chainId);
  const entries = await Promise.all(
    CONTRACT_NAMES.map(async (name) => {
      const entry = record.contracts[name] as { address: string; abi: string };
      const abi = await get(abiUrl(entry.abi));
      if (!Array.isArray(abi)) throw new ConfigError(`The ABI of ${name} is not a JSON array`);
      return [name, { address: getAddress(entry.address), abi: abi as Abi }] as const;
    }),
  );
  const roles: Record<string, Address> = {};
  for (const [role, address] of Object.entries(record.roles)) {
    if (/^0x[0-9a-fA-F]{40}$/.test(address)) roles[role] = getAddress(address);
  }
  return {
    network: record.network,
    chainId: record.chainId,
    deployBlock: BigInt(record.deployBlock),
    contracts: Object.fromEntries(entries) as Deployment["contracts"],
    roles,
    params: record.params ?? {},
  };
}
