// Family tree page: the ancestors and descendants of one model (or every model).

import { html } from "lit-html";
import type { App, Page } from "../app";
import { FamilyTreeView } from "../components/family-tree";
import { familyNodes, listModels, modelLabel, withNames } from "../data";
import { familyOf, layoutFamily } from "../lib/tree";
import { href } from "../router";
import { Loader } from "./common";

export function treePage(app: App, params: Record<string, string>): Page {
  const focus = params.id !== undefined ? BigInt(params.id) : null;
  const view = new FamilyTreeView(app, (id) => (location.hash = href.model(id)));
  const models = new Loader(app, async () => {
    const list = await listModels(app);
    void withNames(app, list, () => app.rerender());
    return list;
  });
  return {
    title: focus === null ? "Family tree" : `Family tree of #${focus}`,
    dispose: () => models.dispose(),
    view: () =>
      html`<h1>Family tree${focus !== null ? html` of <a href=${href.model(focus)}>#${focus}</a>` : ""}</h1>
        ${models.view((list) => {
          const family = familyOf(familyNodes(list), focus);
          if (!family) return html`<p class="error">Model #${focus} does not exist. <a href=${href.tree()}>See every model</a>.</p>`;
          if (!family.members.length) return html`<p class="empty">No models registered yet.</p>`;
          const layout = layoutFamily(family.members, focus, family);
          return html`<div class="toolbar">
              <label>Focus on
                <select data-testid="tree-focus" @change=${(e: Event) => (location.hash = href.tree((e.target as HTMLSelectElement).value || undefined))}>
                  <option value="" ?selected=${focus === null}>every model</option>
                  ${list.map((m) => html`<option value=${String(m.id)} ?selected=${m.id === focus}>${modelLabel(m)}</option>`)}
                </select>
              </label>
            </div>
            ${view.render(layout)}`;
        }, "the family tree")}`,
  };
}
