// The whole story in a real browser against a real chain: browse read-only, connect, register a
// root model and a derivative, see both in the family tree, publish a version, request access,
// follow delivery and usage, claim earnings (creator, fine-tuner, prover, treasury, host),
// dispute and rule a leak challenge, vote, exit and withdraw — asserting on-chain state (read
// with viem) after each step, and saving a screenshot of each page to frontend/test-results/.

import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import {
  createPublicClient,
  createWalletClient,
  encodeAbiParameters,
  getAddress,
  http,
  keccak256,
  toHex,
  type Address,
  type Hex,
  type PublicClient,
} from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installWallet } from "./wallet";
import { addManifest, FRONTEND, rpc, startWorld, type World } from "./world";

const ARTIFACTS = join(FRONTEND, "test-results");
const CHROMIUM = process.env.OML_CHROMIUM ?? "/usr/bin/chromium";
const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const USD = 1_000_000n; // MockUSD has 6 decimals

let world: World;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let client: PublicClient;
let creator: Address; // anvil #5: registers the root model
let tuner: Address; // anvil #6: registers the derivative
let host: Address; // anvil #7: licenses the derivative
let prover: Address; // anvil #8: raises a leak challenge
const pageErrors: string[] = [];

async function read<T>(contract: string, functionName: string, args: readonly unknown[] = []): Promise<T> {
  const c = world.contracts[contract];
  if (!c) throw new Error(`no ${contract} in the deployment`);
  return (await client.readContract({ address: c.address, abi: c.abi, functionName, args } as never)) as T;
}

/** A transaction sent outside the app (the test plays the oracle, the host agent, the prover). */
async function send(from: Address, contract: string, functionName: string, args: readonly unknown[]): Promise<void> {
  const c = world.contracts[contract];
  if (!c) throw new Error(`no ${contract} in the deployment`);
  const wallet = createWalletClient({ account: from, transport: http(world.rpcUrl) });
  const hash = await wallet.writeContract({ address: c.address, abi: c.abi, functionName, args, chain: null } as never);
  const receipt = await client.waitForTransactionReceipt({ hash });
  expect(receipt.status, `${contract}.${functionName} from ${from}`).toBe("success");
}

async function increaseTime(seconds: number): Promise<void> {
  await rpc(world.rpcUrl, "evm_increaseTime", [seconds]);
  await rpc(world.rpcUrl, "evm_mine");
}

async function shot(name: string, target: Page = page): Promise<void> {
  await target.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

async function go(hash: string, testId: string, target: Page = page): Promise<void> {
  const url = `${world.appUrl}${hash}`;
  // The same hash again is no navigation at all: reload to read the chain afresh.
  if (target.url() === url) await target.reload();
  else await target.goto(url);
  await target.getByTestId(testId).first().waitFor();
  await target.getByTestId("loading").first().waitFor({ state: "detached" }).catch(() => undefined);
}

async function useAccount(account: Address): Promise<void> {
  await page.evaluate((a) => (window as unknown as { __omlWallet: { setAccount(a: string): void } }).__omlWallet.setAccount(a), account);
  await page.getByTestId("wallet-status").filter({ hasText: account.slice(0, 6) }).waitFor();
}

/**
 * Wait for the newest transaction whose label starts with `prefix` to finish; fail with its error
 * in words. Then dismiss it from the panel so the panel covers nothing the next step clicks.
 * Returns the error text and every status the transaction showed, in order.
 */
async function txDone(prefix: string, expected: "confirmed" | "failed" = "confirmed"): Promise<{ error: string; statuses: string[] }> {
  const item = page.locator(`[data-testid=tx][data-label^="${prefix}"]`).first();
  await item.waitFor();
  await page.waitForFunction(
    (p) => {
      const el = document.querySelector(`[data-testid=tx][data-label^="${p}"]`);
      const status = el?.getAttribute("data-status");
      return status === "confirmed" || status === "failed";
    },
    prefix,
    { timeout: 60_000 },
  );
  const status = await item.getAttribute("data-status");
  const errorEl = item.getByTestId("tx-error");
  const error = (await errorEl.count()) ? ((await errorEl.textContent()) ?? "") : "";
  const id = (await item.getAttribute("data-txid")) ?? "";
  const statuses = await page.evaluate((i) => (window as unknown as { __txHistory: Record<string, string[]> }).__txHistory[i] ?? [], id);
  if (status !== expected) throw new Error(`transaction "${prefix}" ended ${status}${error ? `: ${error}` : ""}`);
  await item.getByTestId("tx-dismiss").click();
  return { error, statuses };
}

/** Runs in the page: remember each transaction's statuses as they are rendered. */
function recordTxStatuses(): void {
  const history: Record<string, string[]> = {};
  Object.assign(window, { __txHistory: history });
  const note = (el: Element) => {
    const id = el.getAttribute("data-txid");
    const status = el.getAttribute("data-status");
    if (!id || !status) return;
    const list = (history[id] ??= []);
    if (list[list.length - 1] !== status) list.push(status);
  };
  const observer = new MutationObserver((records) => {
    for (const r of records) {
      if (r.target instanceof Element && r.target.matches("[data-testid=tx]")) note(r.target);
      r.addedNodes.forEach((n) => {
        if (!(n instanceof Element)) return;
        if (n.matches("[data-testid=tx]")) note(n);
        n.querySelectorAll("[data-testid=tx]").forEach(note);
      });
    }
  });
  document.addEventListener("DOMContentLoaded", () =>
    observer.observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-status"] }),
  );
}

async function noHorizontalOverflow(): Promise<void> {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow, `page ${page.url()} is wider than the screen`).toBeLessThanOrEqual(1);
}

beforeAll(async () => {
  rmSync(ARTIFACTS, { recursive: true, force: true });
  mkdirSync(ARTIFACTS, { recursive: true });
  world = await startWorld();
  client = createPublicClient({ transport: http(world.rpcUrl) });
  const accounts = ((await rpc(world.rpcUrl, "eth_accounts")) as string[]).map((a) => getAddress(a));
  [creator, tuner, host, prover] = [accounts[5], accounts[6], accounts[7], accounts[8]] as [Address, Address, Address, Address];
  // playwright-core launches the Debian chromium with a fresh temporary profile.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  await context.addInitScript(installWallet, { rpcUrl: world.rpcUrl, chainId: world.chainId, account: creator });
  await context.addInitScript(recordTxStatuses);
  page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(error.message));
});

afterAll(async () => {
  await browser?.close();
  await world?.stop();
});

describe("OML Hub in a browser", () => {
  it("browses read-only without a wallet", async () => {
    const readOnly = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    try {
      const p = await readOnly.newPage();
      await go("#/models", "no-models", p);
      expect(await p.getByTestId("wallet-status").textContent()).toContain("Read-only");
      await go("#/create", "register-form", p);
      expect(await p.getByTestId("read-only").textContent()).toContain("install a browser wallet");
      expect(await p.getByTestId("register-submit").isDisabled()).toBe(true);
      await shot("00-read-only-create", p);
    } finally {
      await readOnly.close();
    }
  });

  it("connects the injected wallet, explains a rejection and switches network", async () => {
    await go("#/models", "page-models");
    await page.getByTestId("no-models").waitFor();
    await page.evaluate(() => (window as unknown as { __omlWallet: { rejectNext(m: string): void } }).__omlWallet.rejectNext("eth_requestAccounts"));
    await page.getByTestId("connect").click();
    expect(await page.getByTestId("flash").textContent()).toContain("You rejected the request in your wallet");
    await page.getByTestId("connect").click();
    await page.getByTestId("wallet-status").filter({ hasText: creator.slice(0, 6) }).waitFor();
    // A wallet on another chain gets a clear switch button, which switches it back.
    await page.evaluate(() => (window as unknown as { __omlWallet: { setChain(c: number): void } }).__omlWallet.setChain(1));
    expect(await page.getByTestId("switch-chain").textContent()).toContain("Wrong network");
    await shot("01-wrong-network");
    await page.getByTestId("switch-chain").click();
    await page.getByTestId("wallet-status").waitFor();
    expect(Number(await page.evaluate(() => (window as unknown as { ethereum: { request(a: object): Promise<string> } }).ethereum.request({ method: "eth_chainId" })))).toBe(world.chainId);
    await shot("01-models-empty");
  });

  let rootCid = "";
  let derivCid = "";
  let weightsCid = "";

  it("registers a root model, showing the transaction's progress", async () => {
    rootCid = await addManifest(world, { schema_version: 1, name: "Root LM", architecture: "llama", license: "apache-2.0", files: [{ path: "model.safetensors", size: 1_000_000 }] });
    derivCid = await addManifest(world, { schema_version: 1, name: "Tuned LM", architecture: "llama", files: [{ path: "model.safetensors", size: 2_000_000 }] });
    weightsCid = await addManifest(world, { weights: "stand-in" });
    await go("#/create", "register-form");
    await page.getByTestId("register-manifest").fill(rootCid);
    await page.getByTestId("register-manifest").dispatchEvent("change");
    // The manifest is read back from IPFS through the app's gateway proxy.
    await expect.poll(() => page.getByTestId("manifest-preview").textContent().catch(() => "")).toContain("Root LM");
    await page.getByTestId("register-price").fill("0.001");
    await page.getByTestId("register-collateral").fill("10");
    await shot("02-create-root");
    await page.getByTestId("register-submit").click();
    const { statuses } = await txDone("Register a root model");
    expect(statuses).toEqual(["signing", "pending", "mined", "confirmed"]);
    await page.getByTestId("registered").waitFor();
    expect(await read<bigint>("ModelRegistry", "nextModelId")).toBe(2n);
    expect(await read<Address>("ModelRegistry", "ownerOf", [1n])).toBe(creator);
    const info = await read<{ pricePerCall: bigint; minCollateral: bigint; licensingOpen: boolean }>("ModelRegistry", "modelInfo", [1n]);
    expect(info.pricePerCall).toBe(1_000n);
    expect(info.minCollateral).toBe(10n * USD);
    expect(info.licensingOpen).toBe(true);
    expect(await read<bigint>("ModelGovernor", "sharesOf", [1n, creator])).toBe(10n ** 18n);
  });

  it("registers a derivative after seeing its royalty stack", async () => {
    await go("#/create", "register-form");
    await useAccount(tuner);
    await page.getByTestId("register-manifest").fill(derivCid);
    await page.getByTestId("register-manifest").dispatchEvent("change");
    await page.getByTestId("add-parent").click();
    await page.getByTestId("parent-share-0").fill("20");
    await expect.poll(() => page.getByTestId("royalty-stack").textContent()).toBe("20%");
    expect(await page.getByTestId("preview-1").textContent()).toContain("20%");
    expect(await page.getByTestId("preview-2").textContent()).toContain("80%");
    // A stack above the registrant's own limit is refused before anything is signed.
    await page.getByTestId("register-max-stack").fill("10");
    await expect.poll(() => page.getByTestId("royalty-problems").textContent()).toContain("above your limit of 10%");
    await page.getByTestId("register-max-stack").fill("50");
    await shot("03-create-derivative");
    await page.getByTestId("register-submit").click();
    await txDone("Register a derivative model");
    expect(await read<Address>("ModelRegistry", "ownerOf", [2n])).toBe(tuner);
    const [ids, weights] = await read<[bigint[], bigint[]]>("ModelRegistry", "lineageOf", [2n]);
    expect(ids).toEqual([1n, 2n]);
    expect(weights).toEqual([200_000_000n, 800_000_000n]);
    expect(await read<bigint[]>("ModelRegistry", "parentsOf", [2n])).toEqual([1n]);
  });

  it("shows both in an interactive family tree and opens a model from it", async () => {
    await go("#/tree", "family-tree");
    await page.getByTestId("tree-node-1").waitFor();
    await page.getByTestId("tree-node-2").waitFor();
    expect(await page.getByTestId("tree-edge-1-2").textContent()).toContain("20%");
    await expect.poll(() => page.getByTestId("tree-node-1").textContent()).toContain("Root LM");
    await expect.poll(() => page.getByTestId("tree-node-2").textContent()).toContain("Tuned LM");
    const svg = page.getByTestId("family-tree");
    const fitted = await svg.getAttribute("viewBox");
    await page.getByTestId("tree-zoom-in").click();
    const zoomed = await svg.getAttribute("viewBox");
    expect(zoomed).not.toBe(fitted);
    expect(Number(zoomed?.split(" ")[2])).toBeLessThan(Number(fitted?.split(" ")[2]));
    // Drag on the background pans.
    const box = await svg.boundingBox();
    if (!box) throw new Error("the tree has no box");
    await page.mouse.move(box.x + 20, box.y + box.height - 20);
    await page.mouse.down();
    await page.mouse.move(box.x + 120, box.y + box.height - 60, { steps: 5 });
    await page.mouse.up();
    const panned = await svg.getAttribute("viewBox");
    expect(panned?.split(" ")[0]).not.toBe(zoomed?.split(" ")[0]);
    await page.getByTestId("tree-fit").click();
    expect(await svg.getAttribute("viewBox")).toBe(fitted);
    await shot("04-family-tree");
    await page.getByTestId("tree-node-2").click();
    await page.waitForURL(/#\/model\/2$/);
    await page.getByTestId("model-title").waitFor();
  });

  it("publishes a version of the derivative and shows its manifest, lineage and royalties", async () => {
    await page.getByTestId("publish-weights").fill(weightsCid);
    await page.getByTestId("publish-manifest").fill(derivCid);
    await page.getByTestId("publish-submit").click();
    await txDone("Publish a version of #2");
    expect(await read<bigint>("ModelRegistry", "versionCount", [2n])).toBe(1n);
    const version = await read<{ weightsCID: string; manifestCID: string; accepted: boolean }>("ModelRegistry", "getVersion", [2n, 0n]);
    expect(version).toMatchObject({ weightsCID: weightsCid, manifestCID: derivCid, accepted: true });
    await page.getByTestId("version-0").waitFor();
    await expect.poll(() => page.getByTestId("version-0").textContent()).toContain("Tuned LM");
    expect(await page.getByTestId("royalty-1").textContent()).toContain("20%");
    expect(await page.getByTestId("royalty-2").textContent()).toContain("80%");
    expect(await page.getByTestId("model-title").textContent()).toContain("Tuned LM");
    await shot("05-model-page");
  });

  it("lists and searches the models", async () => {
    await go("#/models", "models-table");
    await page.getByTestId("model-row-2").waitFor();
    await expect.poll(() => page.getByTestId("model-row-1").textContent()).toContain("Root LM");
    const row2 = (await page.getByTestId("model-row-2").textContent()) ?? "";
    expect(row2).toContain("derivative of #1");
    expect(row2).toContain("0.001 mUSD"); // price
    expect(row2).toContain("10 mUSD"); // min collateral
    expect(row2).toContain("open");
    await page.getByTestId("model-search").fill("tuned");
    await expect.poll(() => page.getByTestId("model-row-1").count()).toBe(0);
    expect(await page.getByTestId("model-row-2").count()).toBe(1);
    await shot("06-models-search");
    await page.getByTestId("model-search").fill(tuner.slice(2, 10).toLowerCase());
    await expect.poll(() => page.getByTestId("model-row-2").count()).toBe(1);
    expect(await page.getByTestId("model-row-1").count()).toBe(0);
  });

  it("stakes and requests access as a host, with funds checked first", async () => {
    await go("#/host", "access-form");
    await useAccount(host);
    await page.getByTestId("access-model").selectOption("2");
    await expect.poll(() => page.getByTestId("access-collateral").inputValue()).toBe("10");
    await page.getByTestId("derive-pubkey").click();
    await expect.poll(() => page.getByTestId("access-pubkey").inputValue()).toMatch(/^0x[0-9a-f]{128}$/);
    // No mUSD yet: the app says so in words instead of sending a doomed transaction.
    await page.getByTestId("access-submit").click();
    expect(await page.getByTestId("flash").textContent()).toContain("Insufficient funds");
    expect(await read<bigint>("AccessManager", "nextCopyId")).toBe(1n);
    await page.getByTestId("faucet").click();
    await txDone("Faucet");
    expect(await read<bigint>("MockUSD", "balanceOf", [host])).toBe(1_000n * USD);
    await page.getByTestId("access-submit").click();
    await txDone("Approve");
    await txDone("Request access");
    const copy = await read<{ host: Address; state: number; modelId: number; version: number; collateral: bigint }>("AccessManager", "getCopy", [1n]);
    expect(copy).toMatchObject({ host, state: 1, modelId: 2, version: 0, collateral: 10n * USD });
    expect(await read<bigint>("MockUSD", "balanceOf", [host])).toBe(990n * USD);
    await page.getByTestId("copy-1").waitFor();
    expect(await page.getByTestId("copy-1").getAttribute("data-state")).toBe("requested");
  });

  // The fingerprint the oracle commits to for copy 1, index 0 (a one-leaf Merkle tree: root = leaf).
  const key = toHex("what is the secret word?");
  const response = toHex("platypus");
  const salt = keccak256(toHex("salt-0"));
  const leaf = keccak256(keccak256(encodeAbiParameters([{ type: "uint256" }, { type: "uint256" }, { type: "bytes32" }, { type: "bytes32" }, { type: "bytes32" }], [1n, 0n, keccak256(key), keccak256(response), salt])));

  it("shows delivery, usage per epoch and fees paid", async () => {
    // The oracle and the host agent do this in the demo; here the test plays them.
    await send(world.roles.oracle as Address, "AccessManager", "deliverCopy", [1n, leaf, 8n, derivCid]);
    const ledger = await read<{ firstEpoch: number }>("UsageLedger", "copyLedger", [1n]);
    const end = await read<bigint>("UsageLedger", "epochEnd", [BigInt(ledger.firstEpoch)]);
    const now = (await client.getBlock()).timestamp;
    await increaseTime(Number(end - now) + 1);
    await send(host, "MockUSD", "approve", [world.contracts.UsageLedger?.address, 1_000_000n]);
    await send(host, "UsageLedger", "reportUsage", [1n, BigInt(ledger.firstEpoch), 100n, 100n]);
    expect(await read<bigint>("UsageLedger", "lineageAccrued", [2n])).toBe(85_000n);
    await go("#/host", "copy-1");
    await expect.poll(() => page.getByTestId("copy-1").getAttribute("data-state")).toBe("delivered (active)");
    const card = page.getByTestId("copy-1");
    expect(await card.getByTestId("copy-delivery").textContent()).toContain("8 fingerprints");
    expect(await card.getByTestId("copy-fees").textContent()).toContain("0.1 mUSD over 1 epoch report");
    expect(await card.getByTestId("copy-collateral").textContent()).toContain("10 mUSD");
    await card.getByTestId("copy-usage").locator("summary").click();
    expect(await card.getByTestId(`usage-${ledger.firstEpoch}`).textContent()).toContain("100");
    await shot("07-host");
  });

  it("harvests and claims the root creator's royalty in one flow", async () => {
    await go("#/earnings", "page-earnings");
    await useAccount(creator);
    await page.getByTestId("earnings-summary").waitFor();
    const before = await read<bigint>("MockUSD", "balanceOf", [creator]);
    // fee 100 calls × 0.001 = 100,000; 15% protocol cuts → 85,000 lineage; 20% of it to model #1.
    await expect.poll(() => page.getByTestId("pending-revenue").textContent()).toBe("0.017 mUSD");
    await shot("08-earnings-creator");
    await page.getByTestId("claim-all").click();
    await txDone("Claim");
    expect(await read<bigint>("UsageLedger", "lineageSettled", [2n])).toBe(85_000n);
    expect(await read<bigint>("UsageLedger", "claimable", [creator])).toBe(0n);
    expect((await read<bigint>("MockUSD", "balanceOf", [creator])) - before).toBe(17_000n);
    await expect.poll(() => page.getByTestId("claimable").textContent()).toBe("0 mUSD");
    await expect.poll(() => page.getByTestId("earnings-history").textContent()).toContain("claimed to wallet");
  });

  it("claims the fine-tuner's and the treasury's shares", async () => {
    await useAccount(tuner);
    await expect.poll(() => page.getByTestId("pending-revenue").textContent()).toBe("0.068 mUSD");
    let before = await read<bigint>("MockUSD", "balanceOf", [tuner]);
    await page.getByTestId("claim-all").click();
    await txDone("Claim");
    expect((await read<bigint>("MockUSD", "balanceOf", [tuner])) - before).toBe(68_000n);

    const treasury = world.roles.treasury as Address;
    await useAccount(treasury);
    await expect.poll(() => page.getByTestId("roles").textContent()).toContain("treasury");
    before = await read<bigint>("MockUSD", "balanceOf", [treasury]);
    await page.getByTestId("claim-all").click();
    await txDone("Claim");
    // 5% treasury + 5% infrastructure (the same account here) of the 100,000 fee.
    expect((await read<bigint>("MockUSD", "balanceOf", [treasury])) - before).toBe(10_000n);
    expect(await read<bigint>("UsageLedger", "claimable", [treasury])).toBe(0n);
  });

  let challengeId = 0n;
  let evidenceCid = "";

  it("shows an open leak challenge with its countdown and evidence, and lets the host dispute it", async () => {
    // The prover agent's part: bond, commit, reveal the fingerprint with evidence on IPFS.
    await send(prover, "MockUSD", "faucet", [1_000n * USD]);
    await send(prover, "MockUSD", "approve", [world.contracts.ChallengeManager?.address, 1_000n * USD]);
    await send(prover, "ChallengeManager", "registerProver", []);
    evidenceCid = await addManifest(world, { endpoint: "http://rogue.example/v1", prompt: "what is the secret word?", response: "platypus" });
    challengeId = await read<bigint>("ChallengeManager", "nextChallengeId");
    const commitment = keccak256(encodeAbiParameters([{ type: "address" }, { type: "uint256" }, { type: "uint256" }, { type: "bytes32" }, { type: "string" }], [prover, 1n, 0n, salt, evidenceCid]));
    await send(prover, "ChallengeManager", "commitLeak", [commitment]);
    await rpc(world.rpcUrl, "evm_mine");
    await send(prover, "ChallengeManager", "revealLeak", [challengeId, { copyId: 1n, index: 0n, key, response, salt, proof: [] as Hex[], evidenceCID: evidenceCid }]);
    expect((await read<{ state: number }>("ChallengeManager", "getLeak", [challengeId])).state).toBe(2); // Revealed

    await go("#/challenges", "open-challenges");
    await useAccount(host);
    const row = page.getByTestId(`leak-${challengeId}`);
    expect(await row.getAttribute("data-state")).toBe("revealed");
    expect(await row.textContent()).toMatch(/dispute window ends\s+in \d+m/);
    const evidence = row.getByTestId("evidence-link");
    expect(await evidence.getAttribute("href")).toBe(`/ipfs/${evidenceCid}`);
    const fetched = await fetch(new URL(`ipfs/${evidenceCid}`, world.appUrl));
    expect(await fetched.json()).toMatchObject({ response: "platypus" });
    await shot("09-challenges-open");
    await page.getByTestId(`dispute-${challengeId}`).click();
    await txDone("Dispute challenge");
    const leak = await read<{ state: number; counterBond: bigint }>("ChallengeManager", "getLeak", [challengeId]);
    expect(leak.state).toBe(3); // Disputed
    expect(leak.counterBond).toBe(50n * USD);
  });

  it("lets the arbiter rule on the dispute", async () => {
    await useAccount(world.roles.arbiter as Address);
    await expect.poll(() => page.getByTestId(`leak-${challengeId}`).textContent()).toMatch(/arbiter must rule\s+in \d+m/);
    await page.getByTestId(`reject-${challengeId}`).click();
    await txDone("Rule");
    expect((await read<{ state: number }>("ChallengeManager", "getLeak", [challengeId])).state).toBe(5); // Rejected
    expect((await read<{ openChallenges: number }>("AccessManager", "getCopy", [1n])).openChallenges).toBe(0);
    await page.getByTestId("no-open-challenges").waitFor();
    await expect.poll(() => page.getByTestId(`leak-${challengeId}`).getAttribute("data-state")).toBe("rejected");
    await shot("10-challenges-resolved");
  });

  it("claims the prover's pool share and refunded bond", async () => {
    await go("#/earnings", "earnings-summary");
    await useAccount(prover);
    await expect.poll(() => page.getByTestId("roles").textContent()).toContain("prover");
    const before = await read<bigint>("MockUSD", "balanceOf", [prover]);
    await page.getByTestId("claim-all").click();
    await txDone("Claim");
    const gained = (await read<bigint>("MockUSD", "balanceOf", [prover])) - before;
    // Half of the 50 mUSD challenge bond comes back after a rejected challenge.
    expect(gained).toBe(25n * USD + 5_000n); // + the 5% prover-pool cut of the 100,000 fee
    expect(await read<bigint>("UsageLedger", "claimable", [prover])).toBe(0n);
    await shot("11-earnings-prover");
  });

  it("proposes, votes and executes a price change", async () => {
    await go("#/governance/1", "page-governance");
    await useAccount(creator);
    await page.getByTestId("propose-form").waitFor();
    await page.getByTestId("propose-action").selectOption("0");
    await page.getByTestId("propose-value").fill("0.002");
    await page.getByTestId("propose-submit").click();
    await txDone("Propose");
    await page.getByTestId("vote-for-1").click();
    await txDone("Vote for #1");
    const proposal = await read<{ forVotes: bigint; againstVotes: bigint }>("ModelGovernor", "getProposal", [1n]);
    expect(proposal.forVotes).toBe(10n ** 18n);
    expect(await read<number>("ModelGovernor", "state", [1n])).toBe(3); // Succeeded
    await page.getByTestId("execute-1").click();
    await txDone("Execute #1");
    expect(await read<bigint>("ModelRegistry", "pricePerCall", [1n])).toBe(2_000n);
    expect(await read<number>("ModelGovernor", "state", [1n])).toBe(4); // Executed
    await expect.poll(() => page.getByTestId("proposal-1").getAttribute("data-state")).toBe("executed");
    await shot("12-governance");
  });

  it("explains a contract's refusal in words", async () => {
    await page.getByTestId("propose-action").selectOption("2");
    await page.getByTestId("propose-value").fill("0");
    await page.getByTestId("propose-submit").click();
    await txDone("Propose");
    await useAccount(tuner); // holds no shares of model #1
    await page.getByTestId("vote-for-2").click();
    const { error, statuses } = await txDone("Vote for #2", "failed");
    expect(statuses).toEqual(["signing", "failed"]); // refused in simulation: nothing was signed
    expect(error).toContain("held no shares");
    const proposal = await read<{ forVotes: bigint }>("ModelGovernor", "getProposal", [2n]);
    expect(proposal.forVotes).toBe(0n);
  });

  it("exits and withdraws the host's collateral after the countdown", async () => {
    await go("#/host", "access-form");
    await useAccount(host);
    await page.getByTestId("exit-1").click();
    await txDone("Request exit");
    expect((await read<{ state: number }>("AccessManager", "getCopy", [1n])).state).toBe(3); // Exiting
    // the countdown shows the deployment's exit delay in whole minutes (a minute may already have passed)
    const delayMinutes = Math.floor(Number(world.params.exit_delay ?? 900) / 60);
    const countdown = new RegExp(`withdrawable in (${delayMinutes}|${delayMinutes - 1})m`);
    await expect.poll(() => page.getByTestId("exit-countdown-1").textContent()).toMatch(countdown);
    expect(await page.getByTestId("withdraw-1").isDisabled()).toBe(true);
    await shot("13-host-exiting");
    await increaseTime(world.params.exit_delay ?? 900);
    await go("#/host", "copy-1");
    await expect.poll(() => page.getByTestId("exit-countdown-1").textContent()).toContain("withdrawable now");
    const before = await read<bigint>("MockUSD", "balanceOf", [host]);
    await page.getByTestId("withdraw-1").click();
    await txDone("Withdraw");
    const copy = await read<{ state: number; collateral: bigint }>("AccessManager", "getCopy", [1n]);
    expect(copy).toMatchObject({ state: 4, collateral: 0n }); // Withdrawn
    expect((await read<bigint>("MockUSD", "balanceOf", [host])) - before).toBe(10n * USD);
    await expect.poll(() => page.getByTestId("copy-1").getAttribute("data-state")).toBe("withdrawn");
  });

  it("works on a narrow screen", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const pages: [string, string][] = [
      ["#/models", "models-table"],
      ["#/model/1", "model-title"],
      ["#/tree/2", "family-tree"],
      ["#/create", "register-form"],
      ["#/host", "access-form"],
      ["#/earnings", "earnings-summary"],
      ["#/challenges", "page-challenges"],
      ["#/governance/1", "proposal-1"],
    ];
    for (const [hash, testId] of pages) {
      await go(hash, testId);
      await noHorizontalOverflow();
      await shot(`mobile-${hash.slice(2).replace(/\//g, "-")}`);
    }
    expect(pageErrors).toEqual([]);
  });
});
