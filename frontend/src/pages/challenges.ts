// Challenges: open leak challenges with their countdowns and evidence links, provable
// challenges that slashed at once, and the actions the connected address may take
// (dispute as the accused host, rule as the arbiter, finalize when a window is over).

import { html, nothing } from "lit-html";
import type { Address } from "viem";
import type { App, Page, TxRequest } from "../app";
import { events } from "../data";
import { gatewayLink } from "../lib/ipfs";
import { formatCountdown, formatToken, shortAddress } from "../lib/format";
import { href } from "../router";
import { ChainClock, Loader, needsWallet } from "./common";

export const LEAK_STATES = ["none", "committed", "revealed", "disputed", "upheld", "rejected", "timed out", "expired"] as const;
const KINDS = ["under-reporting", "equivocation", "missed report", "leak"] as const;

interface Leak {
  challenger: Address;
  state: number;
  commitBlock: bigint;
  deadline: bigint;
  host: Address;
  bond: bigint;
  counterBond: bigint;
  copyId: bigint;
  index: bigint;
}

interface LeakRow {
  id: bigint;
  leak: Leak;
  evidenceCID: string | null;
  slashed: bigint | null;
}

interface ChallengeData {
  leaks: LeakRow[];
  provable: { id: bigint; copyId: bigint; challenger: Address; kind: number; slashed: bigint; reward: bigint }[];
  isProver: boolean;
  params: { proverBond: bigint; counterBond: bigint; arbiter: Address };
}

/** Committed challenges are sealed (commit-reveal): copy, key and host are unknown until revealed. */
function revealed(l: LeakRow): boolean {
  return l.leak.state !== 1 && l.leak.host !== "0x0000000000000000000000000000000000000000";
}

export function deadlineWords(state: number): string {
  switch (LEAK_STATES[state]) {
    case "committed":
      return "reveal due";
    case "revealed":
      return "dispute window ends";
    case "disputed":
      return "arbiter must rule";
    default:
      return "closed";
  }
}

export function challengesPage(app: App): Page {
  const clock = new ChainClock(app);
  const data = new Loader<ChallengeData>(app, async () => {
    void clock.sync();
    const [committed, revealed, resolved, provable, params, isProver] = await Promise.all([
      events<{ challengeId: bigint }>(app, "ChallengeManager", "LeakCommitted"),
      events<{ challengeId: bigint; evidenceCID: string }>(app, "ChallengeManager", "LeakRevealed"),
      events<{ challengeId: bigint; slashed: bigint }>(app, "ChallengeManager", "LeakResolved"),
      events<{ challengeId: bigint; copyId: bigint; challenger: Address; kind: number; slashed: bigint; reward: bigint }>(app, "ChallengeManager", "ProvableChallenge"),
      app.read<ChallengeData["params"]>("ChallengeManager", "params"),
      app.account ? app.read<boolean>("ChallengeManager", "isProver", [app.account]) : Promise.resolve(false),
    ]);
    const leaks = await Promise.all(
      committed.map(async ({ args }) => ({
        id: args.challengeId,
        leak: await app.read<Leak>("ChallengeManager", "getLeak", [args.challengeId]),
        evidenceCID: revealed.find((r) => r.args.challengeId === args.challengeId)?.args.evidenceCID ?? null,
        slashed: resolved.find((r) => r.args.challengeId === args.challengeId)?.args.slashed ?? null,
      })),
    );
    return { leaks: leaks.reverse(), provable: provable.map((p) => ({ ...p.args, id: p.args.challengeId })).reverse(), isProver, params };
  });
  const unwatch = app.wallet.onChange(() => void data.load());

  const withApproval = async (amount: bigint, label: string, request: TxRequest) => {
    const account = app.account;
    if (!account) return app.flash("Connect your wallet first.");
    const allowance = await app.read<bigint>("MockUSD", "allowance", [account, app.address("ChallengeManager")]);
    const steps: TxRequest[] = allowance < amount ? [{ label: `Approve ${formatToken(amount)} ${label}`, contract: "MockUSD", functionName: "approve", args: [app.address("ChallengeManager"), amount] }] : [];
    await app.txSequence([...steps, request]);
  };

  const actions = (row: LeakRow, d: ChallengeData) => {
    const me = app.account?.toLowerCase();
    const state = LEAK_STATES[row.leak.state];
    const over = clock.now >= Number(row.leak.deadline);
    const buttons = [];
    if (state === "revealed" && !over && me === row.leak.host.toLowerCase())
      buttons.push(html`<button data-testid=${`dispute-${row.id}`} @click=${() => void withApproval(d.params.counterBond, "counter-bond", { label: `Dispute challenge #${row.id}`, contract: "ChallengeManager", functionName: "disputeLeak", args: [row.id] })}>Dispute (bond ${formatToken(d.params.counterBond)})</button>`);
    if (state === "disputed" && !over && me === d.params.arbiter.toLowerCase())
      buttons.push(
        html`<button class="warn" data-testid=${`uphold-${row.id}`} @click=${() => app.tx({ label: `Rule #${row.id}: leaked`, contract: "ChallengeManager", functionName: "rule", args: [row.id, true] })}>Rule: leaked</button>`,
        html`<button class="secondary" data-testid=${`reject-${row.id}`} @click=${() => app.tx({ label: `Rule #${row.id}: not leaked`, contract: "ChallengeManager", functionName: "rule", args: [row.id, false] })}>Rule: not leaked</button>`,
      );
    if ((state === "committed" || state === "revealed" || state === "disputed") && over && app.account)
      buttons.push(html`<button class="secondary" data-testid=${`finalize-${row.id}`} @click=${() => app.tx({ label: `Finalize challenge #${row.id}`, contract: "ChallengeManager", functionName: "finalizeLeak", args: [row.id] })}>Finalize</button>`);
    return buttons;
  };

  return {
    title: "Challenges",
    dispose: () => {
      data.dispose();
      clock.dispose();
      unwatch();
    },
    view: () => html`<h1>Challenges</h1>
      ${needsWallet(app, "dispute, rule or finalize")}
      ${data.view((d) => {
        const open = d.leaks.filter((l) => l.leak.state >= 1 && l.leak.state <= 3);
        const closed = d.leaks.filter((l) => !(l.leak.state >= 1 && l.leak.state <= 3));
        const row = (l: LeakRow) => html`<tr data-testid=${`leak-${l.id}`} data-state=${LEAK_STATES[l.leak.state] ?? "?"}>
          <td>#${l.id}</td><td>${revealed(l) ? `copy #${l.leak.copyId} · key ${l.leak.index}` : html`<span class="muted">sealed until reveal</span>`}</td>
          <td title=${l.leak.host}>${revealed(l) ? shortAddress(l.leak.host) : "—"}</td><td title=${l.leak.challenger}>${shortAddress(l.leak.challenger)}</td>
          <td><span class="badge">${LEAK_STATES[l.leak.state]}</span></td>
          <td>${l.leak.state >= 1 && l.leak.state <= 3 ? html`${deadlineWords(l.leak.state)} <span class="countdown">${formatCountdown(l.leak.deadline, clock.now)}</span>` : l.slashed !== null ? `slashed ${formatToken(l.slashed)}` : "—"}</td>
          <td>${l.evidenceCID ? html`<a href=${gatewayLink(app.config.ipfsGateway, l.evidenceCID)} target="_blank" rel="noopener" data-testid="evidence-link" title=${l.evidenceCID}>evidence</a>` : html`<span class="muted">not revealed</span>`}</td>
          <td class="actions">${actions(l, d)}</td></tr>`;
        const head = html`<thead><tr><th>Id</th><th>Copy</th><th>Host</th><th>Challenger</th><th>State</th><th>Deadline</th><th>Evidence</th><th></th></tr></thead>`;
        return html`${app.account
            ? d.isProver
              ? html`<p class="notice ok">You are a registered prover. Provers run <code>oml prover</code> to probe hosts and raise challenges.</p>`
              : html`<p>Provers stake a bond of ${formatToken(d.params.proverBond)} and earn a share of fees and of slashed stake.
                  <button class="secondary" data-testid="register-prover" @click=${() => void withApproval(d.params.proverBond, "prover bond", { label: "Register as prover", contract: "ChallengeManager", functionName: "registerProver", args: [] })}>Become a prover</button></p>`
            : nothing}
          <h2>Open leak challenges</h2>
          ${open.length ? html`<div class="table-wrap"><table data-testid="open-challenges">${head}<tbody>${open.map(row)}</tbody></table></div>` : html`<p class="empty" data-testid="no-open-challenges">No open challenges.</p>`}
          <h2>Closed leak challenges</h2>
          ${closed.length ? html`<div class="table-wrap"><table>${head}<tbody>${closed.map(row)}</tbody></table></div>` : html`<p class="empty">None.</p>`}
          <h2>Provable challenges (slashed at once)</h2>
          ${d.provable.length
            ? html`<div class="table-wrap"><table><thead><tr><th>Id</th><th>Kind</th><th>Copy</th><th>Challenger</th><th class="num">Slashed</th><th class="num">Reward</th></tr></thead>
                <tbody>${d.provable.map((p) => html`<tr><td>#${p.id}</td><td>${KINDS[Number(p.kind)]}</td><td>#${p.copyId}</td><td>${shortAddress(p.challenger)}</td><td class="num">${formatToken(p.slashed)}</td><td class="num">${formatToken(p.reward)}</td></tr>`)}</tbody></table></div>`
            : html`<p class="empty">None.</p>`}
          <p class="muted small">Hosts: see your copies on the <a href=${href.host()}>Host</a> page.</p>`;
      }, "challenges")}`,
  };
}
