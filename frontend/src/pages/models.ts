// Models: every registered model with owner, versions, price, collateral, licensing and fees;
// a search over name, id and owner.

import { html } from "lit-html";
import type { App, Page } from "../app";
import { listModels, modelLabel, withNames, type ModelSummary } from "../data";
import { formatToken, shortAddress } from "../lib/format";
import { href } from "../router";
import { Loader } from "./common";

export function matches(model: ModelSummary, query: string): boolean {
  const q = query.trim().toLowerCase();
  if (!q) return true;
  return (
    `#${model.id}` === q ||
    String(model.id) === q ||
    (model.name ?? "").toLowerCase().includes(q) ||
    model.owner.toLowerCase().includes(q) ||
    model.manifestCID.toLowerCase() === q
  );
}

export function modelsPage(app: App): Page {
  let query = "";
  const models = new Loader(app, async () => {
    const list = await listModels(app);
    void withNames(app, list, () => app.rerender());
    return list;
  });

  const row = (m: ModelSummary) => html`<tr data-testid=${`model-row-${m.id}`}>
    <td><a href=${href.model(m.id)} data-testid="model-link">${modelLabel(m)}</a>${m.parents.length ? html`<br /><small class="muted">derivative of ${m.parents.map((p) => `#${p.id}`).join(", ")}</small>` : ""}</td>
    <td data-label="Owner" title=${m.owner}>${shortAddress(m.owner)}</td>
    <td data-label="Versions" class="num">${m.versions}</td>
    <td data-label="Price / call" class="num">${formatToken(m.info.pricePerCall)}</td>
    <td data-label="Min collateral" class="num">${formatToken(m.info.minCollateral)}</td>
    <td data-label="Licensing"><span class="badge ${m.info.licensingOpen ? "ok" : "warn"}">${m.info.licensingOpen ? "open" : "paused"}</span></td>
    <td data-label="Fees earned" class="num">${formatToken(m.feesEarned)}</td>
  </tr>`;

  return {
    title: "Models",
    dispose: () => models.dispose(),
    view: () => html`<h1>Models</h1>
      <div class="toolbar">
        <input type="search" placeholder="Search by name, #id or owner" aria-label="Search models" data-testid="model-search"
          .value=${query} @input=${(e: Event) => { query = (e.target as HTMLInputElement).value; app.rerender(); }} />
        <a class="button" href=${href.create()}>Register a model</a>
      </div>
      ${models.view((list) => {
        const shown = list.filter((m) => matches(m, query));
        if (!list.length) return html`<p class="empty" data-testid="no-models">No models registered yet. <a href=${href.create()}>Register the first one</a>.</p>`;
        return html`<div class="table-wrap"><table class="models" data-testid="models-table">
          <thead><tr><th>Model</th><th>Owner</th><th class="num">Versions</th><th class="num">Price / call</th><th class="num">Min collateral</th><th>Licensing</th><th class="num">Fees earned</th></tr></thead>
          <tbody>${shown.map(row)}</tbody>
        </table></div>
        ${shown.length === 0 ? html`<p class="empty">No model matches “${query}”.</p>` : ""}`;
      }, "models")}`,
  };
}
