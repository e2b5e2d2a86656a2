// Governance: per-model proposals (price, minimum collateral, licensing, accepting a version),
// votes weighted by the shares held at the block before the proposal, and execution.

import { html, nothing } from "lit-html";
import type { Address } from "viem";
import type { App, Page } from "../app";
import { events, listModels, modelLabel, withNames, type ModelSummary } from "../data";
import { formatCountdown, formatShares, formatToken, parseTokenAmount, shortAddress } from "../lib/format";
import { href } from "../router";
import { ChainClock, Loader, needsWallet } from "./common";

export const ACTIONS = ["Set price per call", "Set minimum collateral", "Open / pause licensing", "Accept a version"] as const;
export const PROPOSAL_STATES = ["none", "active", "defeated", "succeeded", "executed"] as const;

interface Proposal {
  modelId: bigint;
  value: bigint;
  action: number;
  executed: boolean;
  proposer: Address;
  snapshotBlock: bigint;
  voteEnd: bigint;
  forVotes: bigint;
  againstVotes: bigint;
}

interface ProposalRow {
  id: bigint;
  proposal: Proposal;
  state: number;
  myVote: boolean | null;
}

interface GovData {
  models: ModelSummary[];
  model: ModelSummary | null;
  myShares: bigint;
  proposals: ProposalRow[];
}

/** The proposal's value in words: "price 0.002 mUSD", "licensing paused", "version 1". */
export function describeValue(action: number, value: bigint): string {
  switch (action) {
    case 0:
      return `price ${formatToken(value)} per call`;
    case 1:
      return `minimum collateral ${formatToken(value)}`;
    case 2:
      return value === 0n ? "pause licensing" : "open licensing";
    case 3:
      return `accept version ${value}`;
    default:
      return String(value);
  }
}

export function parseProposalValue(action: number, text: string): bigint {
  if (action === 0 || action === 1) return parseTokenAmount(text);
  if (action === 2) return text === "0" || /^(pause|paused|no|false)$/i.test(text) ? 0n : 1n;
  if (!/^\d+$/.test(text.trim())) throw new Error(`"${text}" is not a version number`);
  return BigInt(text.trim());
}

export function governancePage(app: App, params: Record<string, string>): Page {
  const modelId = params.id !== undefined ? BigInt(params.id) : null;
  const clock = new ChainClock(app);
  const form = { action: 0, value: "" };
  const data = new Loader<GovData>(app, async () => {
    void clock.sync();
    const models = await listModels(app);
    void withNames(app, models, () => app.rerender());
    const model = modelId === null ? null : (models.find((m) => m.id === modelId) ?? null);
    if (!model) return { models, model, myShares: 0n, proposals: [] };
    const account = app.account;
    const [myShares, created, myVotes] = await Promise.all([
      account ? app.read<bigint>("ModelGovernor", "sharesOf", [model.id, account]) : Promise.resolve(0n),
      events<{ proposalId: bigint }>(app, "ModelGovernor", "ProposalCreated", { modelId: model.id }),
      account ? events<{ proposalId: bigint; support: boolean }>(app, "ModelGovernor", "VoteCast", { voter: account }) : Promise.resolve([]),
    ]);
    const proposals = await Promise.all(
      created.map(async ({ args }) => {
        const [proposal, state] = await Promise.all([
          app.read<Proposal>("ModelGovernor", "getProposal", [args.proposalId]),
          app.read<number>("ModelGovernor", "state", [args.proposalId]),
        ]);
        const vote = myVotes.find((v) => v.args.proposalId === args.proposalId);
        return { id: args.proposalId, proposal, state: Number(state), myVote: vote ? vote.args.support : null };
      }),
    );
    return { models, model, myShares, proposals: proposals.reverse() };
  });
  const unwatch = app.wallet.onChange(() => void data.load());

  const propose = async (e: Event, model: ModelSummary) => {
    e.preventDefault();
    let value: bigint;
    try {
      value = parseProposalValue(form.action, form.value);
    } catch (error) {
      return app.flash((error as Error).message);
    }
    app.flash(null);
    await app.tx({ label: `Propose for ${modelLabel(model)}: ${describeValue(form.action, value)}`, contract: "ModelGovernor", functionName: "propose", args: [model.id, form.action, value] });
  };

  const proposalRow = (p: ProposalRow) => {
    const state = PROPOSAL_STATES[p.state] ?? "?";
    const total = p.proposal.forVotes + p.proposal.againstVotes;
    return html`<article class="card proposal" data-testid=${`proposal-${p.id}`} data-state=${state}>
      <h3>#${p.id}: ${describeValue(p.proposal.action, p.proposal.value)}</h3>
      <p><span class="badge" data-testid="proposal-state">${state}</span> by ${shortAddress(p.proposal.proposer)} ·
        ${state === "active" ? html`voting ends <span class="countdown">${formatCountdown(p.proposal.voteEnd, clock.now)}</span>` : nothing}</p>
      <div class="votes" aria-label="votes">
        <div class="bar"><span class="for" style="width:${total ? Number((p.proposal.forVotes * 100n) / total) : 0}%"></span></div>
        <small>for <span data-testid="votes-for">${formatShares(p.proposal.forVotes)}</span> · against <span data-testid="votes-against">${formatShares(p.proposal.againstVotes)}</span> of all shares</small>
      </div>
      <p class="actions">
        ${p.myVote !== null ? html`<span class="muted" data-testid="my-vote">You voted ${p.myVote ? "for" : "against"}.</span>` : nothing}
        ${state === "active" && p.myVote === null && app.account
          ? html`<button data-testid=${`vote-for-${p.id}`} @click=${() => app.tx({ label: `Vote for #${p.id}`, contract: "ModelGovernor", functionName: "castVote", args: [p.id, true] })}>Vote for</button>
              <button class="secondary" data-testid=${`vote-against-${p.id}`} @click=${() => app.tx({ label: `Vote against #${p.id}`, contract: "ModelGovernor", functionName: "castVote", args: [p.id, false] })}>Vote against</button>`
          : nothing}
        ${state === "succeeded" && app.account
          ? html`<button data-testid=${`execute-${p.id}`} @click=${() => app.tx({ label: `Execute #${p.id}`, contract: "ModelGovernor", functionName: "execute", args: [p.id] })}>Execute</button>`
          : nothing}
      </p>
    </article>`;
  };

  return {
    title: modelId === null ? "Governance" : `Governance of #${modelId}`,
    dispose: () => {
      data.dispose();
      clock.dispose();
      unwatch();
    },
    view: () => html`<h1>Governance</h1>
      ${needsWallet(app, "propose and vote")}
      ${data.view((d) => {
        const picker = html`<label>Model
          <select data-testid="gov-model" @change=${(e: Event) => (location.hash = href.governance((e.target as HTMLSelectElement).value || undefined))}>
            <option value="">— pick a model —</option>
            ${d.models.map((m) => html`<option value=${String(m.id)} ?selected=${m.id === modelId}>${modelLabel(m)}</option>`)}
          </select></label>`;
        if (!d.model) return html`${picker}<p class="muted">${modelId === null ? "Pick a model to see its proposals." : `Model #${modelId} does not exist.`}</p>`;
        const m = d.model;
        return html`${picker}
          <p>Now: price ${formatToken(m.info.pricePerCall)}, min collateral ${formatToken(m.info.minCollateral)}, licensing ${m.info.licensingOpen ? "open" : "paused"}.
            Your shares: <strong data-testid="my-shares">${formatShares(d.myShares)}</strong>.</p>
          ${d.myShares > 0n
            ? html`<form class="card" data-testid="propose-form" @submit=${(e: Event) => propose(e, m)}>
                <h2>New proposal</h2>
                <div class="row">
                  <label>Action <select data-testid="propose-action" @change=${(e: Event) => { form.action = Number((e.target as HTMLSelectElement).value); app.rerender(); }}>
                    ${ACTIONS.map((a, i) => html`<option value=${String(i)} ?selected=${form.action === i}>${a}</option>`)}</select></label>
                  <label>${["New price (mUSD)", "New minimum (mUSD)", "1 = open, 0 = pause", "Version number"][form.action]}
                    <input data-testid="propose-value" .value=${form.value} @input=${(e: Event) => (form.value = (e.target as HTMLInputElement).value)} /></label>
                </div>
                <button type="submit" data-testid="propose-submit">Propose</button>
                <p class="muted small">Passes after the voting period with quorum and more for than against — or at once when more than half of all shares vote for.</p>
              </form>`
            : nothing}
          <h2>Proposals</h2>
          ${d.proposals.length ? d.proposals.map(proposalRow) : html`<p class="empty" data-testid="no-proposals">No proposals for this model yet.</p>`}`;
      }, "governance")}`,
  };
}
