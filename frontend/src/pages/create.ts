// Create: register a root model or a derivative. Pick parents and their shares and see the
// resulting royalty stack — exactly what the registry will store — before signing.

import { html, nothing } from "lit-html";
import type { App, Page } from "../app";
import { listModels, modelLabel, parentLineages, withNames, type ModelSummary } from "../data";
import { fetchManifest, type ManifestResult } from "../lib/ipfs";
import { formatBps, formatPpb, parsePercentToBps, parseTokenAmount } from "../lib/format";
import { computeRoyaltyStack, MAX_PARENTS, type ParentLineage, type RoyaltyStack } from "../lib/royalty";
import { href } from "../router";
import { Loader, needsWallet } from "./common";

interface ParentRow {
  id: string;
  share: string;
}

export function createPage(app: App): Page {
  const form = { manifestCID: "", price: "0.001", minCollateral: "10", maxStack: "50" };
  let parents: ParentRow[] = [];
  let lineages = new Map<bigint, ParentLineage>();
  let nextId = 0n;
  let manifest: ManifestResult | null = null;
  let lastRegistered: bigint | null = null;

  const models = new Loader(app, async () => {
    const [list, next] = await Promise.all([listModels(app), app.read<bigint>("ModelRegistry", "nextModelId")]);
    nextId = next;
    void withNames(app, list, () => app.rerender());
    lineages = await parentLineages(app, list.map((m) => m.id));
    return list;
  });

  const stack = (): { stack: RoyaltyStack; problems: string[] } => {
    const problems: string[] = [];
    const choices = parents.map((p) => {
      let shareBps = 0;
      try {
        shareBps = parsePercentToBps(p.share);
      } catch (error) {
        problems.push((error as Error).message);
      }
      return { id: BigInt(p.id || "0"), shareBps };
    });
    let maxBps = 10_000;
    try {
      maxBps = parsePercentToBps(form.maxStack);
    } catch (error) {
      problems.push(`Royalty limit: ${(error as Error).message}`);
    }
    const result = computeRoyaltyStack(choices, lineages, nextId, maxBps);
    return { stack: result, problems: [...problems, ...result.problems] };
  };

  const checkManifest = (cid: string) => {
    manifest = null;
    if (!cid) return;
    void fetchManifest(app.config.ipfsGateway, cid).then((r) => {
      if (form.manifestCID === cid) {
        manifest = r;
        app.rerender();
      }
    });
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    const { problems } = stack();
    if (!form.manifestCID) return app.flash("Give the manifest CID of the model (publish it to IPFS first, e.g. `oml storage publish`).");
    if (problems.length) return app.flash(problems.join(" "));
    let price: bigint;
    let minCollateral: bigint;
    try {
      price = parseTokenAmount(form.price);
      minCollateral = parseTokenAmount(form.minCollateral);
    } catch (error) {
      return app.flash((error as Error).message);
    }
    app.flash(null);
    const expected = nextId;
    const ok = await app.tx({
      label: parents.length ? "Register a derivative model" : "Register a root model",
      contract: "ModelRegistry",
      functionName: "registerModel",
      args: [
        parents.map((p) => BigInt(p.id)),
        parents.map((p) => parsePercentToBps(p.share)),
        form.manifestCID,
        { pricePerCall: price, minCollateral },
        parsePercentToBps(form.maxStack),
      ],
    });
    if (ok) {
      lastRegistered = expected;
      parents = [];
      form.manifestCID = "";
      manifest = null;
      app.rerender();
    }
  };

  const parentRow = (list: ModelSummary[], p: ParentRow, i: number) => html`<div class="parent-row" data-testid=${`parent-row-${i}`}>
    <select aria-label="Parent model" data-testid=${`parent-select-${i}`} @change=${(e: Event) => { p.id = (e.target as HTMLSelectElement).value; app.rerender(); }}>
      ${list.map((m) => html`<option value=${String(m.id)} ?selected=${String(m.id) === p.id}>${modelLabel(m)}</option>`)}
    </select>
    <label class="inline">share <input class="short" inputmode="decimal" aria-label="Share paid to this parent (%)" data-testid=${`parent-share-${i}`}
      .value=${p.share} @input=${(e: Event) => { p.share = (e.target as HTMLInputElement).value; app.rerender(); }} />%</label>
    <button type="button" class="link" @click=${() => { parents.splice(i, 1); app.rerender(); }}>remove</button>
  </div>`;

  const preview = (list: ModelSummary[]) => {
    const { stack: s, problems } = stack();
    const label = (id: bigint) => (id === nextId ? `this model (#${id})` : modelLabel(list.find((m) => m.id === id) ?? { id, name: null }));
    return html`<section class="card" data-testid="royalty-preview">
      <h3>Royalty stack if you register now</h3>
      <p>Parents take <strong data-testid="royalty-stack">${formatBps(s.stackBps)}</strong> of this model's lineage revenue; family depth ${s.depth}.</p>
      <table><thead><tr><th>Recipient</th><th class="num">Share of lineage revenue</th></tr></thead>
        <tbody>${s.entries.map((e) => html`<tr data-testid=${`preview-${e.id}`}><td>${label(e.id)}</td><td class="num">${formatPpb(e.weightPpb)}</td></tr>`)}</tbody></table>
      ${problems.length ? html`<ul class="error" data-testid="royalty-problems">${problems.map((p) => html`<li>${p}</li>`)}</ul>` : nothing}
    </section>`;
  };

  return {
    title: "Create",
    dispose: () => models.dispose(),
    view: () => html`<h1>Register a model</h1>
      ${needsWallet(app, "register a model")}
      ${lastRegistered !== null ? html`<p class="notice ok" data-testid="registered">Registered model <a href=${href.model(lastRegistered)}>#${lastRegistered}</a>. Publish its first version on its page.</p>` : nothing}
      ${models.view(
        (list) => html`<form class="card" data-testid="register-form" @submit=${submit}>
            <label>Manifest CID
              <input name="manifestCID" required placeholder="bafy… (from oml storage publish)" data-testid="register-manifest"
                .value=${form.manifestCID} @change=${(e: Event) => { form.manifestCID = (e.target as HTMLInputElement).value.trim(); checkManifest(form.manifestCID); app.rerender(); }} />
            </label>
            ${manifest ? (manifest.ok ? html`<p class="ok small" data-testid="manifest-preview">Manifest: ${manifest.manifest.name} (${manifest.manifest.files} file(s))</p>` : html`<p class="warn small">Manifest not readable from IPFS: ${manifest.error}. You can still register.</p>`) : nothing}
            <div class="row">
              <label>Price per call (mUSD) <input inputmode="decimal" data-testid="register-price" .value=${form.price} @input=${(e: Event) => (form.price = (e.target as HTMLInputElement).value)} /></label>
              <label>Min host collateral (mUSD) <input inputmode="decimal" data-testid="register-collateral" .value=${form.minCollateral} @input=${(e: Event) => (form.minCollateral = (e.target as HTMLInputElement).value)} /></label>
            </div>
            <fieldset>
              <legend>Parents (leave empty for a root model)</legend>
              ${parents.map((p, i) => parentRow(list, p, i))}
              ${list.length && parents.length < MAX_PARENTS
                ? html`<button type="button" class="secondary" data-testid="add-parent" @click=${() => { parents.push({ id: String(list.find((m) => !parents.some((p) => p.id === String(m.id)))?.id ?? list[0]?.id ?? 1n), share: "10" }); app.rerender(); }}>Add a parent</button>`
                : list.length ? nothing : html`<p class="muted small">No models yet: this will be a root model.</p>`}
              <label>Refuse if parents take more than <input class="short" data-testid="register-max-stack" .value=${form.maxStack} @input=${(e: Event) => { form.maxStack = (e.target as HTMLInputElement).value; app.rerender(); }} />%</label>
            </fieldset>
            ${preview(list)}
            <button type="submit" data-testid="register-submit" ?disabled=${!app.account}>Register ${parents.length ? "derivative" : "root model"}</button>
          </form>`,
        "models",
      )}`,
  };
}
