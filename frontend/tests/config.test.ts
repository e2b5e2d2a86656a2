import { describe, expect, it } from "vitest";
import { abiUrl, ConfigError, loadDeployment, parseDeploymentRecord, parseRuntimeConfig } from "../src/lib/config";
import { createHandler, runtimeConfig } from "../scripts/serve.mjs";

const NAMES = ["ModelRegistry", "AccessManager", "UsageLedger", "ChallengeManager", "ModelGovernor", "MockUSD"];
const address = (i: number) => `0x${String(i).padStart(40, "0")}`;
const record = (chainId = 31337) => ({
  network: "local",
  chainId,
  deployBlock: 43,
  contracts: Object.fromEntries(NAMES.map((n, i) => [n, { address: address(i + 1), abi: `deployments/abi/${n}.json` }])),
  roles: { treasury: "0x90F79bf6EB2c4f870365E785982E1f101E93b906", bogus: "not an address" },
  params: { exit_delay: 900 },
});

describe("runtime config", () => {
  it("accepts what scripts/serve.mjs serves", () => {
    const served = runtimeConfig({ OML_ANVIL_PORT: "18645", OML_IPFS_GATEWAY_PORT: "18180" });
    const config = parseRuntimeConfig(served);
    expect(config).toEqual({
      rpcUrl: "http://127.0.0.1:18645",
      chainId: 31337,
      chainName: "OML local (Anvil)",
      deployment: "/deployments/local.json",
      ipfsGateway: "/ipfs/",
      confirmations: 1,
      pollingIntervalMs: 1000,
    });
    expect(runtimeConfig({ OML_RPC_URL: "https://rpc.example/v1", OML_NETWORK: "sepolia", OML_CHAIN_ID: "11155111" })).toMatchObject({
      rpcUrl: "https://rpc.example/v1",
      chainId: 11155111,
      deployment: "/deployments/sepolia.json",
    });
  });

  it("refuses a broken config in words", () => {
    expect(() => parseRuntimeConfig(null)).toThrow(ConfigError);
    expect(() => parseRuntimeConfig({ chainId: 1, deployment: "/d.json" })).toThrow("config.json rpcUrl is missing");
    expect(() => parseRuntimeConfig({ rpcUrl: "ws://x", chainId: 1, deployment: "/d.json" })).toThrow(/not an http/);
    expect(() => parseRuntimeConfig({ rpcUrl: "http://x", chainId: -1, deployment: "/d.json" })).toThrow(/not a chain id/);
    expect(() => runtimeConfig({ OML_NETWORK: "../etc" })).toThrow(/not a plain name/);
  });
});

describe("deployment record", () => {
  it("checks the record written by scripts/deploy.py", () => {
    expect(parseDeploymentRecord(record(), 31337).deployBlock).toBe(43);
    expect(() => parseDeploymentRecord(record(1), 31337)).toThrow("The deployment is for chain 1 but the app is configured for chain 31337");
    const missing = record();
    delete (missing.contracts as Record<string, unknown>).ModelGovernor;
    expect(() => parseDeploymentRecord(missing, 31337)).toThrow("The deployment has no ModelGovernor (address and abi path)");
  });

  it("maps ABI paths to the server's URLs", () => {
    expect(abiUrl("deployments/abi/X.json")).toBe("/deployments/abi/X.json");
    expect(abiUrl("./deployments/abi/X.json")).toBe("/deployments/abi/X.json");
    expect(abiUrl("abi/X.json")).toBe("/deployments/abi/X.json");
  });

  it("loads addresses and ABIs at run time, never baked in", async () => {
    const fetched: string[] = [];
    const config = parseRuntimeConfig(runtimeConfig({}));
    const deployment = await loadDeployment(config, async (url) => {
      fetched.push(url);
      return url === "/deployments/local.json" ? record() : [{ type: "function", name: "x", inputs: [], outputs: [], stateMutability: "view" }];
    });
    expect(fetched[0]).toBe("/deployments/local.json");
    expect(fetched).toContain("/deployments/abi/UsageLedger.json");
    expect(deployment.contracts.MockUSD.address).toBe(address(6));
    expect(deployment.roles).toEqual({ treasury: "0x90F79bf6EB2c4f870365E785982E1f101E93b906" });
    await expect(loadDeployment(config, async (url) => (url.endsWith("local.json") ? record() : { not: "an array" }))).rejects.toThrow(/is not a JSON array/);
  });
});

describe("static server", () => {
  /** Call the handler like node:http would and collect the answer. */
  function get(path: string): Promise<{ status: number; body: string }> {
    const handler = createHandler({ OML_FRONTEND_DIST: "/nonexistent-dist" });
    return new Promise((resolve) => {
      let status = 200;
      let body = "";
      const res = {
        headersSent: false,
        writeHead(code: number) {
          status = code;
        },
        end(chunk?: string) {
          body += chunk ?? "";
          resolve({ status, body });
        },
      };
      handler({ url: path } as never, res as never);
    });
  }

  it("serves /config.json from the environment", async () => {
    const r = await get("/config.json");
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ chainId: 31337 });
  });

  it("never serves files outside deployments/ nor anything but JSON there", async () => {
    expect((await get("/deployments/../Makefile")).status).not.toBe(200); // normalised to /Makefile: not in dist/
    expect((await get("/deployments/..%2fpackage.json")).status).toBe(404); // a real JSON file one level up
    expect((await get("/deployments/nope.json")).status).toBe(404);
    expect((await get("/ipfs/bad$cid")).status).toBe(404);
  });

  it("says when the app is not built", async () => {
    const r = await get("/");
    expect(r.status).toBe(500);
    expect(r.body).toMatch(/npm run build/);
  });
});
