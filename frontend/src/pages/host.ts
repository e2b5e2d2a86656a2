// Host: stake collateral and request a licensed copy, follow delivery, usage per epoch, fees
// paid, and exit / withdraw with the countdown.

import { html, nothing } from "lit-html";
import { createWalletClient, custom, hashMessage, recoverPublicKey, type Address, type Hex } from "viem";
import type { App, Page } from "../app";
import { COPY_STATES, events, listModels, modelLabel, versionsOf, withNames, type Copy, type ModelSummary, type Version } from "../data";
import { formatCountdown, formatDuration, formatTimestamp, formatToken, parseTokenAmount } from "../lib/format";
import { href } from "../router";
import { ChainClock, Loader, needsWallet } from "./common";

interface HostCopy {
  copyId: bigint;
  endpoint: string;
  copy: Copy;
  delivery: { copyCID: string; fpCount: bigint } | null;
  reports: { epoch: bigint; calls: bigint; lastSeq: bigint; fee: bigint; block: bigint }[];
  /** Closed epochs not yet reported (delivered copies only): the host agent's backlog. */
  unreported: { from: bigint; count: bigint } | null;
}

interface CopyLedger {
  firstEpoch: number;
  endEpoch: number;
  nextEpoch: number;
}

/** Closed epochs from `nextEpoch` on that still need a report (none after the exit epoch). */
export function unreportedEpochs(ledger: CopyLedger, currentEpoch: bigint): { from: bigint; count: bigint } {
  const from = BigInt(Math.max(ledger.nextEpoch, ledger.firstEpoch));
  const lastClosed = currentEpoch - 1n;
  const last = lastClosed < BigInt(ledger.endEpoch) ? lastClosed : BigInt(ledger.endEpoch);
  return { from, count: last >= from ? last - from + 1n : 0n };
}

interface HostData {
  balance: bigint;
  models: ModelSummary[];
  copies: HostCopy[];
  exitDelay: bigint;
  deliveryTimeout: bigint;
}

export const PUBKEY_MESSAGE = "OML Hub: reveal my public key so the oracle can encrypt my model copy to it.";

/** The 64-byte (x‖y) secp256k1 public key of the connected account, from one signature. */
export async function derivePublicKey(app: App, account: Address): Promise<Hex> {
  const provider = app.wallet.state.provider;
  if (!provider) throw new Error("Connect a wallet first.");
  const wallet = createWalletClient({ account, chain: app.chain, transport: custom(provider) });
  const signature = await wallet.signMessage({ account, message: PUBKEY_MESSAGE });
  const uncompressed = await recoverPublicKey({ hash: hashMessage(PUBKEY_MESSAGE), signature });
  return `0x${uncompressed.slice(4)}` as Hex; // drop the 0x04 prefix
}

export function hostPage(app: App): Page {
  const clock = new ChainClock(app);
  const form = { modelId: "", version: "", endpoint: "http://127.0.0.1:8000/v1", collateral: "", pubKey: "" };
  let versions: Version[] = [];

  const data = new Loader<HostData | null>(app, async () => {
    void clock.sync();
    const account = app.account;
    const models = await listModels(app);
    void withNames(app, models, () => app.rerender());
    if (!account) return { balance: 0n, models, copies: [], exitDelay: 0n, deliveryTimeout: 0n };
    const [balance, exitDelay, deliveryTimeout, requested] = await Promise.all([
      app.read<bigint>("MockUSD", "balanceOf", [account]),
      app.read<bigint>("AccessManager", "exitDelay"),
      app.read<bigint>("AccessManager", "deliveryTimeout"),
      events<{ copyId: bigint; endpoint: string }>(app, "AccessManager", "AccessRequested", { host: account }),
    ]);
    const currentEpoch = await app.read<bigint>("UsageLedger", "currentEpoch");
    const copies = await Promise.all(
      requested.map(async ({ args }) => {
        const [copy, delivered, reports, ledger] = await Promise.all([
          app.read<Copy>("AccessManager", "getCopy", [args.copyId]),
          events<{ copyCID: string; fpCount: bigint }>(app, "AccessManager", "CopyDelivered", { copyId: args.copyId }),
          events<{ epoch: bigint; calls: bigint; lastSeq: bigint; fee: bigint }>(app, "UsageLedger", "UsageReported", { copyId: args.copyId }),
          app.read<CopyLedger>("UsageLedger", "copyLedger", [args.copyId]),
        ]);
        const d = delivered[0]?.args;
        const tracked = copy.state === 2 || copy.state === 3; // Active or Exiting
        return {
          copyId: args.copyId,
          endpoint: args.endpoint,
          copy,
          delivery: d ? { copyCID: d.copyCID, fpCount: d.fpCount } : null,
          reports: reports.map((r) => ({ ...r.args, block: r.blockNumber })),
          unreported: tracked ? unreportedEpochs(ledger, currentEpoch) : null,
        };
      }),
    );
    return { balance, models, copies: copies.reverse(), exitDelay, deliveryTimeout };
  });
  const unwatch = app.wallet.onChange(() => void data.load());

  const pickModel = async (modelId: string, models: ModelSummary[]) => {
    form.modelId = modelId;
    const m = models.find((x) => String(x.id) === modelId);
    versions = [];
    if (!m) return app.rerender();
    form.collateral = (Number(m.info.minCollateral) / 1e6).toString();
    versions = await versionsOf(app, m.id, m.versions);
    const accepted = versions.map((v, i) => (v.accepted ? i : -1)).filter((i) => i >= 0);
    form.version = accepted.length ? String(accepted[accepted.length - 1]) : "";
    app.rerender();
  };

  const request = async (e: Event, d: HostData) => {
    e.preventDefault();
    const account = app.account;
    if (!account) return app.flash("Connect your wallet first.");
    const m = d.models.find((x) => String(x.id) === form.modelId);
    if (!m) return app.flash("Pick a model.");
    if (!m.info.licensingOpen) return app.flash(`Licensing of ${modelLabel(m)} is paused by its owners.`);
    if (form.version === "") return app.flash(`${modelLabel(m)} has no accepted version to license yet.`);
    let collateral: bigint;
    try {
      collateral = parseTokenAmount(form.collateral);
    } catch (error) {
      return app.flash((error as Error).message);
    }
    if (collateral < m.info.minCollateral) return app.flash(`Collateral too low: ${modelLabel(m)} needs at least ${formatToken(m.info.minCollateral)}.`);
    if (collateral > d.balance) return app.flash(`Insufficient funds: you have ${formatToken(d.balance)} and the collateral is ${formatToken(collateral)}. Use the faucet or lower the collateral.`);
    if (!/^0x[0-9a-fA-F]{128}$/.test(form.pubKey)) return app.flash("Derive your public key from your wallet first (the oracle encrypts your copy to it).");
    app.flash(null);
    const allowance = await app.read<bigint>("MockUSD", "allowance", [account, app.address("AccessManager")]);
    const steps = [];
    if (allowance < collateral)
      steps.push({ label: `Approve ${formatToken(collateral)} collateral`, contract: "MockUSD" as const, functionName: "approve", args: [app.address("AccessManager"), collateral] });
    steps.push({
      label: `Request access to ${modelLabel(m)} v${form.version}`,
      contract: "AccessManager" as const,
      functionName: "requestAccess",
      args: [m.id, BigInt(form.version), form.endpoint, collateral, form.pubKey as Hex],
    });
    await app.txSequence(steps);
  };

  const copyActions = (c: HostCopy, d: HostData) => {
    const now = clock.now;
    const s = c.copy.state;
    if (s === 2)
      return html`<button class="secondary" data-testid=${`exit-${c.copyId}`} @click=${() => app.tx({ label: `Request exit of copy #${c.copyId}`, contract: "AccessManager", functionName: "requestExit", args: [c.copyId] })}>Request exit</button>`;
    if (s === 3) {
      const readyAt = Number(c.copy.exitRequestedAt + d.exitDelay);
      const ready = now >= readyAt && c.copy.openChallenges === 0;
      return html`<span data-testid=${`exit-countdown-${c.copyId}`}>${now >= readyAt ? (c.copy.openChallenges ? `${c.copy.openChallenges} open challenge(s) block withdrawal` : "withdrawable now") : `withdrawable ${formatCountdown(readyAt, now)}`}</span>
        <button ?disabled=${!ready} data-testid=${`withdraw-${c.copyId}`} @click=${() => app.tx({ label: `Withdraw collateral of copy #${c.copyId}`, contract: "AccessManager", functionName: "withdraw", args: [c.copyId] })}>Withdraw</button>`;
    }
    if (s === 1) {
      const readyAt = Number(c.copy.requestedAt + d.deliveryTimeout);
      return html`<span>awaiting the oracle; cancel possible ${formatCountdown(readyAt, now)}</span>
        <button class="secondary" ?disabled=${now < readyAt} @click=${() => app.tx({ label: `Cancel request #${c.copyId}`, contract: "AccessManager", functionName: "cancelRequest", args: [c.copyId] })}>Cancel request</button>`;
    }
    return nothing;
  };

  const copyCard = (c: HostCopy, d: HostData) => {
    const model = d.models.find((m) => m.id === BigInt(c.copy.modelId));
    const paid = c.reports.reduce((s, r) => s + r.fee, 0n);
    return html`<article class="card copy" data-testid=${`copy-${c.copyId}`} data-state=${COPY_STATES[c.copy.state] ?? "unknown"}>
      <h3>Copy #${c.copyId} · <a href=${href.model(c.copy.modelId)}>${model ? modelLabel(model) : `Model #${c.copy.modelId}`}</a> v${c.copy.version}</h3>
      <dl class="facts">
        <dt>State</dt><dd data-testid="copy-state">${COPY_STATES[c.copy.state] ?? "unknown"}</dd>
        <dt>Delivery</dt><dd data-testid="copy-delivery">${c.delivery ? html`delivered ${formatTimestamp(c.copy.deliveredAt)} · ${c.delivery.fpCount} fingerprints · <code class="cid">${c.delivery.copyCID}</code>` : "not yet delivered"}</dd>
        <dt>Endpoint</dt><dd><code>${c.endpoint}</code></dd>
        <dt>Collateral</dt><dd data-testid="copy-collateral">${formatToken(c.copy.collateral)}${c.copy.slashed ? html` <span class="error">(${formatToken(c.copy.slashed)} slashed)</span>` : nothing}</dd>
        <dt>Fees paid</dt><dd data-testid="copy-fees">${formatToken(paid)} over ${c.reports.length} epoch report(s)</dd>
        ${c.unreported
          ? html`<dt>Reports due</dt><dd data-testid="copy-due" class=${c.unreported.count > 0n ? "warn" : ""}>${c.unreported.count > 0n
              ? `${c.unreported.count} closed epoch(s) unreported from epoch ${c.unreported.from} — your host agent reports and pays each epoch; a missed one is slashable after the grace period`
              : `up to date (next: epoch ${c.unreported.from})`}</dd>`
          : nothing}
        ${c.copy.openChallenges ? html`<dt>Challenges</dt><dd class="warn">${c.copy.openChallenges} open — <a href=${href.challenges()}>see them</a></dd>` : nothing}
      </dl>
      ${c.reports.length
        ? html`<details data-testid="copy-usage"><summary>Usage per epoch</summary><div class="table-wrap"><table><thead><tr><th>Epoch</th><th class="num">Calls</th><th class="num">Last seq</th><th class="num">Fee</th></tr></thead>
            <tbody>${c.reports.map((r) => html`<tr data-testid=${`usage-${r.epoch}`}><td>${r.epoch}</td><td class="num">${r.calls}</td><td class="num">${r.lastSeq}</td><td class="num">${formatToken(r.fee)}</td></tr>`)}</tbody></table></div></details>`
        : nothing}
      <div class="actions">${copyActions(c, d)}</div>
    </article>`;
  };

  return {
    title: "Host",
    dispose: () => {
      data.dispose();
      clock.dispose();
      unwatch();
    },
    view: () => html`<h1>Host a model</h1>
      ${needsWallet(app, "stake and request access")}
      ${data.view((d) => {
        if (!d) return html``;
        const open = d.models.filter((m) => m.info.licensingOpen && m.versions > 0n);
        return html`${app.account
            ? html`<p data-testid="balance">Balance: <strong>${formatToken(d.balance)}</strong>
                <button class="secondary" data-testid="faucet" @click=${() => app.tx({ label: "Faucet 1,000 mUSD", contract: "MockUSD", functionName: "faucet", args: [1_000_000_000n] })}>Get 1,000 test mUSD</button></p>`
            : nothing}
          <form class="card" data-testid="access-form" @submit=${(e: Event) => request(e, d)}>
            <h2>Request access</h2>
            <label>Model
              <select data-testid="access-model" @change=${(e: Event) => void pickModel((e.target as HTMLSelectElement).value, d.models)}>
                <option value="">— pick a model open for licensing —</option>
                ${open.map((m) => html`<option value=${String(m.id)} ?selected=${form.modelId === String(m.id)}>${modelLabel(m)} · ${formatToken(m.info.pricePerCall)}/call</option>`)}
              </select>
            </label>
            <label>Version
              <select data-testid="access-version" @change=${(e: Event) => (form.version = (e.target as HTMLSelectElement).value)}>
                ${versions.map((v, i) => html`<option value=${String(i)} ?disabled=${!v.accepted} ?selected=${form.version === String(i)}>v${i}${v.accepted ? "" : " (not accepted)"}</option>`)}
              </select>
            </label>
            <label>Inference endpoint <input data-testid="access-endpoint" .value=${form.endpoint} @input=${(e: Event) => (form.endpoint = (e.target as HTMLInputElement).value)} /></label>
            <label>Collateral (mUSD) <input inputmode="decimal" data-testid="access-collateral" .value=${form.collateral} @input=${(e: Event) => (form.collateral = (e.target as HTMLInputElement).value)} /></label>
            <label>Your public key (the copy is encrypted to it)
              <span class="row">
                <input data-testid="access-pubkey" placeholder="0x… (64 bytes)" .value=${form.pubKey} @input=${(e: Event) => (form.pubKey = (e.target as HTMLInputElement).value.trim())} />
                <button type="button" class="secondary" data-testid="derive-pubkey" ?disabled=${!app.account}
                  @click=${async () => {
                    try {
                      form.pubKey = await derivePublicKey(app, app.account as Address);
                      app.rerender();
                    } catch (error) {
                      app.flash(app.explain(error));
                    }
                  }}>Derive from wallet</button>
              </span>
            </label>
            <p class="muted small">Collateral stays slashable until you exit and the exit delay (${formatDuration(d.exitDelay)}) has passed.</p>
            <button type="submit" data-testid="access-submit" ?disabled=${!app.account}>Stake and request access</button>
          </form>
          <h2>Your copies</h2>
          ${d.copies.length ? d.copies.map((c) => copyCard(c, d)) : html`<p class="empty" data-testid="no-copies">${app.account ? "No licences yet." : "Connect a wallet to see your licences."}</p>`}`;
      }, "your licences")}`,
  };
}

