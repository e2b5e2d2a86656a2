// The world the browser tests run against, all on free loopback ports and torn down after:
// their own Anvil (or OML_E2E_RPC_URL), the protocol deployed by scripts/deploy.py's functions
// (e2e/deploy_world.py), their own offline js-ipfs node for manifests and evidence, and the
// built app served by scripts/serve.mjs (which proxies /ipfs/ to that node's gateway).

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer } from "node:net";
import type { Server } from "node:http";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { getAddress, type Abi, type Address } from "viem";
import { serve } from "../scripts/serve.mjs";

export const FRONTEND = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const REPO = resolve(FRONTEND, "..");

export interface World {
  rpcUrl: string;
  chainId: number;
  network: string;
  appUrl: string;
  ipfsApi: string;
  contracts: Record<string, { address: Address; abi: Abi }>;
  roles: Record<string, Address>;
  params: Record<string, number>;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

async function rpc(url: string, method: string, params: unknown[] = []): Promise<unknown> {
  const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  const body = (await response.json()) as { result?: unknown; error?: { message: string } };
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not come up within ${timeoutMs / 1000}s`);
}

/** Start a js-ipfs node (offline, its own repo, free loopback ports); resolves when it answers. */
async function startIpfs(cleanups: (() => Promise<void> | void)[]): Promise<{ api: string; gateway: string }> {
  const binary = join(REPO, "node_modules", ".bin", "jsipfs");
  if (!existsSync(binary)) throw new Error(`jsipfs not found at ${binary}: run \`make setup\` (or npm ci) in the repository root`);
  const repo = mkdtempSync(join(tmpdir(), "oml-e2e-ipfs-"));
  cleanups.push(() => rmSync(repo, { recursive: true, force: true }));
  const env = { ...process.env, IPFS_PATH: repo };
  const init = spawnSync(binary, ["init", "--profile=test", "--empty-repo"], { env, encoding: "utf8", timeout: 120_000 });
  if (init.status !== 0) throw new Error(`jsipfs init failed:\n${init.stdout}\n${init.stderr}`);
  const [api, gateway, grpc, swarm] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const configPath = join(repo, "config");
  const config = JSON.parse(readFileSync(configPath, "utf8")) as { Addresses: Record<string, unknown> };
  Object.assign(config.Addresses, {
    API: `/ip4/127.0.0.1/tcp/${api}`,
    Gateway: `/ip4/127.0.0.1/tcp/${gateway}`,
    RPC: `/ip4/127.0.0.1/tcp/${grpc}`,
    Swarm: [`/ip4/127.0.0.1/tcp/${swarm}`],
  });
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  // Its own process group: the daemon spawns helpers and renames itself, so stop it by group.
  const daemon = spawn(binary, ["daemon", "--offline", "--enable-preload=false"], { env, stdio: "ignore", detached: true });
  cleanups.push(() => stopGroup(daemon));
  const apiUrl = `http://127.0.0.1:${api}`;
  await waitFor(`IPFS at ${apiUrl}`, async () => (await fetch(`${apiUrl}/api/v0/version`, { method: "POST" })).ok, 60_000);
  return { api: apiUrl, gateway: `http://127.0.0.1:${gateway}` };
}

async function stopGroup(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {
    child.kill("SIGTERM");
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-(child.pid as number), "SIGKILL");
    } catch {
      // already gone
    }
  }, 5000);
  await exited;
  clearTimeout(timer);
}

/** Add a JSON document to the world's IPFS node; returns its CID (v1, base32). */
export async function addManifest(world: World, manifest: object): Promise<string> {
  const form = new FormData();
  form.append("file", new Blob([JSON.stringify(manifest)], { type: "application/json" }), "manifest.json");
  const response = await fetch(`${world.ipfsApi}/api/v0/add?cid-version=1&cid-base=base32&pin=true`, { method: "POST", body: form });
  if (!response.ok) throw new Error(`IPFS add failed: HTTP ${response.status}`);
  const lines = (await response.text()).trim().split("\n");
  return (JSON.parse(lines[lines.length - 1] as string) as { Hash: string }).Hash;
}

export async function startWorld(): Promise<World> {
  const cleanups: (() => Promise<void> | void)[] = [];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  };
  try {
    let rpcUrl = process.env.OML_E2E_RPC_URL ?? "";
    let anvil: ChildProcess | null = null;
    if (!rpcUrl) {
      const port = await freePort();
      const binary = join(REPO, "node_modules", ".bin", "anvil");
      if (!existsSync(binary)) throw new Error(`Anvil not found at ${binary}: run \`make setup\` (or npm ci) in the repository root`);
      anvil = spawn(binary, ["--port", String(port), "--host", "127.0.0.1", "--silent"], { stdio: "ignore", detached: true });
      const child = anvil;
      cleanups.push(() => stopGroup(child));
      rpcUrl = `http://127.0.0.1:${port}`;
    }
    await waitFor(`Anvil at ${rpcUrl}`, async () => Boolean(await rpc(rpcUrl, "eth_chainId")));
    const chainId = Number(await rpc(rpcUrl, "eth_chainId"));

    const network = `test-frontend-${new URL(rpcUrl).port || "rpc"}-${process.pid}`;
    const python = process.env.OML_PYTHON ?? join(REPO, ".venv", "bin", "python");
    const deployed = spawnSync(python, [join(FRONTEND, "e2e", "deploy_world.py"), network], {
      cwd: REPO,
      encoding: "utf8",
      env: {
        ...process.env,
        OML_RPC_URL: rpcUrl,
        SOLCX_BINARY_PATH: process.env.SOLCX_BINARY_PATH ?? join(REPO, "tools", "solc"),
        PATH: `${join(REPO, "node_modules", ".bin")}:${join(REPO, ".venv", "bin")}:${process.env.PATH ?? ""}`,
      },
      timeout: 180_000,
    });
    if (deployed.status !== 0) throw new Error(`deploy failed (${python}):\n${deployed.stdout}\n${deployed.stderr}`);
    const deploymentPath = join(REPO, "deployments", `${network}.json`);
    cleanups.push(() => rmSync(deploymentPath, { force: true }));
    const record = JSON.parse(readFileSync(deploymentPath, "utf8")) as {
      contracts: Record<string, { address: string; abi: string }>;
      roles: Record<string, string>;
      params: Record<string, number>;
    };
    const contracts: World["contracts"] = {};
    for (const [name, entry] of Object.entries(record.contracts))
      contracts[name] = { address: getAddress(entry.address), abi: JSON.parse(readFileSync(join(REPO, entry.abi), "utf8")) as Abi };

    const ipfs = await startIpfs(cleanups);
    const { url, server } = await serve(
      {
        ...process.env,
        OML_RPC_URL: rpcUrl,
        OML_CHAIN_ID: String(chainId),
        OML_NETWORK: network,
        OML_CONFIRMATIONS: "1",
        OML_POLLING_MS: "250",
        OML_FRONTEND_DIST: join(FRONTEND, "dist"),
        OML_IPFS_GATEWAY_URL: ipfs.gateway,
      },
      0,
    );
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          (server as Server).close(() => r());
          (server as Server).closeAllConnections();
        }),
    );
    if (!existsSync(join(FRONTEND, "dist", "index.html"))) throw new Error("frontend/dist is missing: run `npm run build` first");
    return {
      rpcUrl,
      chainId,
      network,
      appUrl: url,
      ipfsApi: ipfs.api,
      contracts,
      roles: Object.fromEntries(Object.entries(record.roles).map(([k, v]) => [k, getAddress(v)])),
      params: record.params,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

export { rpc };
