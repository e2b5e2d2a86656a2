// Earnings: everything the connected address can claim across models (creator, fine-tuner,
// shareholder), as a prover, and as treasury / infrastructure; one claim flow; history.
//
// Revenue reaches a model's holders in three pull steps (FeeRouter): a paying model's lineage
// revenue is `settleLineage`d into its ancestors' accumulators, each holder `harvest`s into its
// claimable balance, then `claimAll` transfers tokens. The flow below runs exactly the steps
// that move money for this address, nothing more.

import { html, nothing } from "lit-html";
import type { Address } from "viem";
import type { App, Page, TxRequest } from "../app";
import { events, lineageOf, listModels, modelLabel, withNames, type ModelSummary } from "../data";
import { PPB, formatShares, formatToken, shortHash } from "../lib/format";
import { familyOf } from "../lib/tree";
import { href } from "../router";
import { Loader, needsWallet } from "./common";

export interface Holding {
  model: ModelSummary;
  shares: bigint;
  settled: bigint;
  unsettledEstimate: bigint;
  toSettle: bigint[];
}

export interface EarningsData {
  account: Address;
  claimable: bigint;
  accrued: bigint;
  claimed: bigint;
  holdings: Holding[];
  isProver: boolean;
  isTreasury: boolean;
  isInfra: boolean;
  protocolUnsplit: bigint;
  /** Rounding dust waiting to be swept to the treasury. */
  dust: bigint;
  history: { kind: "credited" | "claimed"; amount: bigint; block: bigint; tx: string; time?: bigint }[];
}

const TOTAL_SHARES = 10n ** 18n;

async function loadEarnings(app: App, account: Address): Promise<EarningsData> {
  const models = await listModels(app);
  void withNames(app, models, () => app.rerender());
  const nodes = models.map((m) => ({ id: m.id, label: "", parents: m.parents }));
  const unsettled = new Map<bigint, bigint>();
  await Promise.all(
    models.map(async (m) => {
      const settled = await app.read<bigint>("UsageLedger", "lineageSettled", [m.id]);
      unsettled.set(m.id, m.feesEarned - settled);
    }),
  );
  const holdings = (
    await Promise.all(
      models.map(async (model): Promise<Holding | null> => {
        const shares = await app.read<bigint>("ModelGovernor", "sharesOf", [model.id, account]);
        if (shares === 0n) return null;
        const settled = await app.read<bigint>("UsageLedger", "pendingShareRevenue", [model.id, account]);
        // Revenue not yet settled anywhere in this model's subtree (itself and descendants).
        const family = familyOf(nodes, model.id);
        const subtree = [model.id, ...(family ? [...family.descendants] : [])];
        const toSettle = subtree.filter((id) => (unsettled.get(id) ?? 0n) > 0n);
        let estimate = 0n;
        for (const id of toSettle) {
          const table = await lineageOf(app, id);
          const weight = table.find((e) => e.id === model.id)?.weightPpb ?? 0n;
          estimate += ((((unsettled.get(id) ?? 0n) * weight) / PPB) * shares) / TOTAL_SHARES;
        }
        return { model, shares, settled, unsettledEstimate: estimate, toSettle };
      }),
    )
  ).filter((h): h is Holding => h !== null);
  const [claimable, accounting, isProver, config, dust, credited, claimed] = await Promise.all([
    app.read<bigint>("UsageLedger", "claimable", [account]),
    app.read<readonly [bigint, bigint]>("UsageLedger", "accounting", [account]),
    app.read<boolean>("ChallengeManager", "isProver", [account]),
    app.read<{ protocolUnsplit: bigint }>("UsageLedger", "config"),
    app.read<bigint>("UsageLedger", "dust"),
    events<{ amount: bigint }>(app, "UsageLedger", "Credited", { account }),
    events<{ amount: bigint }>(app, "UsageLedger", "Claimed", { account }),
  ]);
  const history = [
    ...credited.map((e) => ({ kind: "credited" as const, amount: e.args.amount, block: e.blockNumber, tx: e.transactionHash })),
    ...claimed.map((e) => ({ kind: "claimed" as const, amount: e.args.amount, block: e.blockNumber, tx: e.transactionHash })),
  ].sort((a, b) => (a.block === b.block ? 0 : a.block > b.block ? -1 : 1));
  const roles = app.deployment.roles;
  return {
    account,
    claimable,
    accrued: accounting[0],
    claimed: accounting[1],
    holdings,
    isProver,
    isTreasury: roles.treasury?.toLowerCase() === account.toLowerCase(),
    isInfra: roles.infrastructure?.toLowerCase() === account.toLowerCase(),
    protocolUnsplit: BigInt(config.protocolUnsplit),
    dust,
    history,
  };
}

/** The transactions that move everything owed to `d.account` into its wallet. */
export function claimSteps(d: EarningsData): TxRequest[] {
  const steps: TxRequest[] = [];
  const settled = new Set<bigint>();
  for (const h of d.holdings) {
    for (const id of h.toSettle) {
      if (settled.has(id) || id === h.model.id) continue; // harvest settles the model itself
      settled.add(id);
      steps.push({ label: `Settle revenue of model #${id}`, contract: "UsageLedger", functionName: "settleLineage", args: [id] });
    }
  }
  for (const h of d.holdings)
    if (h.settled > 0n || h.unsettledEstimate > 0n)
      steps.push({ label: `Harvest ${modelLabel(h.model)}`, contract: "UsageLedger", functionName: "harvest", args: [h.model.id, d.account] });
  if (d.isProver) steps.push({ label: "Harvest prover pool", contract: "UsageLedger", functionName: "harvestProver", args: [d.account] });
  else if ((d.isTreasury || d.isInfra) && d.protocolUnsplit > 0n)
    steps.push({ label: "Split protocol fees", contract: "UsageLedger", functionName: "splitProtocolFees", args: [] });
  if (d.isTreasury && d.dust > 0n) steps.push({ label: "Sweep rounding dust", contract: "UsageLedger", functionName: "sweepDust", args: [] });
  return steps;
}

export function earningsPage(app: App): Page {
  let running = false;
  const data = new Loader<EarningsData | null>(app, async () => (app.account ? loadEarnings(app, app.account) : null));
  const unwatch = app.wallet.onChange(() => void data.load());

  const claimAll = async (d: EarningsData) => {
    running = true;
    app.rerender();
    try {
      if (!(await app.txSequence(claimSteps(d)))) return;
      const claimable = await app.read<bigint>("UsageLedger", "claimable", [d.account]);
      if (claimable === 0n) return app.flash("Nothing to claim yet: no fees have reached your models.");
      await app.tx({ label: `Claim ${formatToken(claimable)}`, contract: "UsageLedger", functionName: "claimAll", args: [] });
    } finally {
      running = false;
      app.rerender();
    }
  };

  return {
    title: "Earnings",
    dispose: () => {
      data.dispose();
      unwatch();
    },
    view: () => html`<h1>Earnings</h1>
      ${needsWallet(app, "see and claim your earnings")}
      ${data.view((d) => {
        if (!d) return html``;
        const pending = d.holdings.reduce((s, h) => s + h.settled + h.unsettledEstimate, 0n);
        const roles = [d.holdings.length ? "model shareholder" : "", d.isProver ? "prover" : "", d.isTreasury ? "treasury" : "", d.isInfra ? "infrastructure" : ""].filter(Boolean);
        return html`<section class="card summary" data-testid="earnings-summary">
            <p>Claimable now: <strong data-testid="claimable">${formatToken(d.claimable)}</strong></p>
            <p>Waiting in your models: <strong data-testid="pending-revenue">${formatToken(pending)}</strong>${d.isProver ? " + your share of the prover pool" : ""}</p>
            ${(d.isTreasury || d.isInfra) && (d.protocolUnsplit > 0n || d.dust > 0n)
              ? html`<p data-testid="protocol-pending">Protocol cut not yet split: <strong>${formatToken(d.protocolUnsplit)}</strong>${d.isTreasury && d.dust > 0n ? html`, rounding dust: <strong>${formatToken(d.dust)}</strong>` : nothing} — your part is credited by the claim below.</p>`
              : nothing}
            <p class="muted small" data-testid="roles">All time: ${formatToken(d.accrued)} credited, ${formatToken(d.claimed)} claimed. Your roles: ${roles.length ? roles.join(", ") : "none yet"}.</p>
            <button data-testid="claim-all" ?disabled=${running || (d.claimable === 0n && pending === 0n && !d.isProver && !(d.protocolUnsplit > 0n && (d.isTreasury || d.isInfra)) && !(d.isTreasury && d.dust > 0n))} @click=${() => void claimAll(d)}>
              ${running ? "Claiming…" : "Claim everything"}
            </button>
          </section>
          <h2>By model</h2>
          ${d.holdings.length
            ? html`<div class="table-wrap"><table data-testid="holdings"><thead><tr><th>Model</th><th class="num">Your shares</th><th class="num">Ready to harvest</th><th class="num">Not yet settled (est.)</th><th></th></tr></thead>
                <tbody>${d.holdings.map((h) => html`<tr data-testid=${`holding-${h.model.id}`}>
                  <td><a href=${href.model(h.model.id)}>${modelLabel(h.model)}</a></td><td class="num">${formatShares(h.shares)}</td>
                  <td class="num">${formatToken(h.settled)}</td><td class="num">${formatToken(h.unsettledEstimate)}</td>
                  <td><a href=${href.governance(h.model.id)}>vote</a></td></tr>`)}</tbody></table></div>`
            : html`<p class="empty">You hold no model shares. Register a model, or receive shares from an owner.</p>`}
          <h2>History</h2>
          ${d.history.length
            ? html`<div class="table-wrap"><table data-testid="earnings-history"><thead><tr><th>Block</th><th>What</th><th class="num">Amount</th><th>Transaction</th></tr></thead>
                <tbody>${d.history.map((e) => html`<tr><td>${e.block}</td><td>${e.kind === "claimed" ? "claimed to wallet" : "credited"}</td><td class="num">${formatToken(e.amount)}</td><td><code>${shortHash(e.tx)}</code></td></tr>`)}</tbody></table></div>`
            : html`<p class="empty">No earnings yet.</p>`}
          ${nothing}`;
      }, "your earnings")}`,
  };
}

