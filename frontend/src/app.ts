// The application object every page receives: runtime config, deployment, chain client,
// wallet, transaction runner and a re-render hook. No framework: lit-html renders templates.

import { html, render, nothing, type TemplateResult } from "lit-html";
import { repeat } from "lit-html/directives/repeat.js";
import {
  createPublicClient,
  createWalletClient,
  custom,
  defineChain,
  http,
  type Abi,
  type Address,
  type Chain,
  type Hash,
  type PublicClient,
} from "viem";
import type { ContractName, Deployment, RuntimeConfig } from "./lib/config";
import { collectErrorAbi, explainError, type AbiError } from "./lib/errors";
import { shortAddress, shortHash } from "./lib/format";
import { Wallet } from "./lib/wallet";

export type TxStatus = "signing" | "pending" | "mined" | "confirmed" | "failed";

export interface TxRecord {
  id: number;
  label: string;
  status: TxStatus;
  hash?: Hash;
  block?: bigint;
  message?: string;
}

export interface TxRequest {
  label: string;
  contract: ContractName;
  functionName: string;
  args?: readonly unknown[];
}

export interface Page {
  title: string;
  view(): TemplateResult;
  dispose?(): void;
}

export type PageFactory = (app: App, params: Record<string, string>) => Page;

export class App {
  readonly chain: Chain;
  readonly client: PublicClient;
  readonly wallet: Wallet;
  readonly errorAbi: AbiError[];
  txs: TxRecord[] = [];
  /** A message in words shown above the page (wallet problems outside a transaction). */
  flashMessage: string | null = null;
  private nextTxId = 1;
  private scheduled = false;
  /** Bumped after every confirmed transaction so pages know to reload. */
  generation = 0;
  private reloaders = new Set<() => void>();

  constructor(
    readonly config: RuntimeConfig,
    readonly deployment: Deployment,
    private readonly draw: () => void,
  ) {
    this.chain = defineChain({
      id: config.chainId,
      name: config.chainName,
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [config.rpcUrl] } },
    });
    this.client = createPublicClient({
      chain: this.chain,
      transport: http(config.rpcUrl, { batch: { wait: 8 }, retryCount: 1 }),
      pollingInterval: config.pollingIntervalMs,
    });
    this.wallet = new Wallet(config);
    this.wallet.onChange(() => this.rerender());
    this.errorAbi = collectErrorAbi(Object.values(deployment.contracts).map((c) => c.abi));
  }

  get account(): Address | null {
    return this.wallet.state.account;
  }

  address(name: ContractName): Address {
    return this.deployment.contracts[name].address;
  }

  abi(name: ContractName): Abi {
    return this.deployment.contracts[name].abi;
  }

  /** Typed-at-the-edge read: ABIs arrive at runtime, so the caller states the result type. */
  async read<T>(contract: ContractName, functionName: string, args: readonly unknown[] = []): Promise<T> {
    return (await this.client.readContract({
      address: this.address(contract),
      abi: this.abi(contract),
      functionName,
      args,
    } as never)) as T;
  }

  explain(error: unknown): string {
    return explainError(error, this.errorAbi, { chainId: this.config.chainId, chainName: this.config.chainName, rpcUrl: this.config.rpcUrl });
  }

  flash(message: string | null): void {
    this.flashMessage = message;
    this.rerender();
  }

  rerender(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.draw();
    });
  }

  onReload(listener: () => void): () => void {
    this.reloaders.add(listener);
    return () => this.reloaders.delete(listener);
  }

  private updateTx(record: TxRecord, patch: Partial<TxRecord>): void {
    Object.assign(record, patch);
    this.txs = [...this.txs];
    this.rerender();
    // A confirmed transaction leaves the panel after a while; a failed one stays until dismissed.
    if (patch.status === "confirmed") setTimeout(() => this.dismissTx(record.id), CONFIRMED_VISIBLE_MS);
  }

  dismissTx(id: number): void {
    const before = this.txs.length;
    this.txs = this.txs.filter((t) => t.id !== id);
    if (this.txs.length !== before) this.rerender();
  }

  /** Drop every finished (confirmed or failed) transaction from the panel. */
  clearFinishedTxs(): void {
    this.txs = this.txs.filter((t) => t.status !== "confirmed" && t.status !== "failed");
    this.rerender();
  }

  /**
   * Run one transaction with its whole lifecycle shown: signing → pending → mined → confirmed,
   * or failed with the reason in words. Simulates first so a revert is explained before the
   * person signs anything. Resolves true when confirmed.
   */
  async tx(request: TxRequest): Promise<boolean> {
    const record: TxRecord = { id: this.nextTxId++, label: request.label, status: "signing" };
    this.txs = [record, ...this.txs].slice(0, 20);
    this.rerender();
    try {
      const provider = this.wallet.state.provider;
      if (!provider || !this.account) throw Object.assign(new Error("Connect a wallet first (you are browsing read-only)."), { name: "NoAccount" });
      if (this.wallet.wrongNetwork) await this.wallet.switchChain();
      const account = this.account;
      const { request: prepared } = await this.client.simulateContract({
        account,
        address: this.address(request.contract),
        abi: this.abi(request.contract),
        functionName: request.functionName,
        args: request.args ?? [],
      } as never);
      const walletClient = createWalletClient({ account, chain: this.chain, transport: custom(provider) });
      const hash = await walletClient.writeContract(prepared as never);
      this.updateTx(record, { status: "pending", hash });
      const receipt = await this.client.waitForTransactionReceipt({ hash, pollingInterval: this.config.pollingIntervalMs });
      if (receipt.status !== "success") {
        // Replay the call at the mined block to recover the custom error.
        let reason = "The transaction reverted.";
        try {
          await this.client.simulateContract({ ...(prepared as object), account, blockNumber: receipt.blockNumber } as never);
        } catch (error) {
          reason = this.explain(error);
        }
        this.updateTx(record, { status: "failed", block: receipt.blockNumber, message: reason });
        return false;
      }
      this.updateTx(record, { status: "mined", block: receipt.blockNumber });
      // Wait for the configured depth (re-reading the receipt also catches a reorg that dropped
      // it); with 1 confirmation this is one round trip, so "mined" is shown before "confirmed".
      await this.client.waitForTransactionReceipt({ hash, confirmations: this.config.confirmations, pollingInterval: this.config.pollingIntervalMs });
      this.updateTx(record, { status: "confirmed" });
      this.generation++;
      for (const reload of this.reloaders) reload();
      return true;
    } catch (error) {
      this.updateTx(record, { status: "failed", message: this.explain(error) });
      return false;
    }
  }

  /** Run transactions one after another, stopping at the first failure. */
  async txSequence(requests: readonly TxRequest[]): Promise<boolean> {
    for (const request of requests) if (!(await this.tx(request))) return false;
    return true;
  }
}

const CONFIRMED_VISIBLE_MS = 20_000;

const STATUS_WORDS: Record<TxStatus, string> = {
  signing: "waiting for your signature",
  pending: "pending",
  mined: "mined",
  confirmed: "confirmed",
  failed: "failed",
};

export function txListView(app: App): TemplateResult {
  if (!app.txs.length) return html``;
  const finished = app.txs.some((t) => t.status === "confirmed" || t.status === "failed");
  return html`<section class="txs" aria-live="polite" data-testid="tx-list">
    <div class="txs-head">
      <h2>Transactions</h2>
      ${finished ? html`<button class="link" data-testid="tx-clear" @click=${() => app.clearFinishedTxs()}>clear finished</button>` : nothing}
    </div>
    <ol>
      ${repeat(
        app.txs,
        (t) => t.id,
        (t) => html`<li class="tx tx-${t.status}" data-testid="tx" data-txid=${t.id} data-status=${t.status} data-label=${t.label}>
          <span class="tx-label">${t.label}</span>
          <span class="tx-steps" aria-label="progress">
            ${(["pending", "mined", "confirmed"] as const).map((step) => {
              const order = ["signing", "pending", "mined", "confirmed"];
              const done = t.status !== "failed" && order.indexOf(t.status) >= order.indexOf(step);
              return html`<span class="step ${done ? "done" : ""}">${step}</span>`;
            })}
          </span>
          <span class="tx-status" data-testid="tx-status">${STATUS_WORDS[t.status]}${t.block !== undefined ? html` · block ${t.block}` : nothing}</span>
          ${t.hash ? html`<code class="tx-hash" title=${t.hash}>${shortHash(t.hash)}</code>` : nothing}
          ${t.status === "confirmed" || t.status === "failed"
            ? html`<button class="link tx-dismiss" data-testid="tx-dismiss" aria-label="Dismiss" title="Dismiss" @click=${() => app.dismissTx(t.id)}>×</button>`
            : nothing}
          ${t.message ? html`<p class="error" data-testid="tx-error">${t.message}</p>` : nothing}
        </li>`,
      )}
    </ol>
  </section>`;
}

export function walletView(app: App): TemplateResult {
  const w = app.wallet.state;
  if (!w.provider) return html`<span class="badge" data-testid="wallet-status">Read-only (no wallet)</span>`;
  if (!w.account)
    return html`<button data-testid="connect" ?disabled=${w.connecting} @click=${() => app.wallet.connect().catch((e: unknown) => app.flash(app.explain(e)))}>
      ${w.connecting ? "Connecting…" : "Connect wallet"}
    </button>`;
  if (app.wallet.wrongNetwork)
    return html`<button class="warn" data-testid="switch-chain" @click=${() => app.wallet.switchChain().catch((e: unknown) => app.flash(app.explain(e)))}>
      Wrong network (${w.chainId}) — switch to ${app.config.chainName}
    </button>`;
  return html`<span class="badge ok" data-testid="wallet-status" title=${w.account}>${shortAddress(w.account)}</span>`;
}

export function mount(root: HTMLElement, template: TemplateResult): void {
  render(template, root);
}
