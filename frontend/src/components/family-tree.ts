// Interactive family-tree SVG: drag to pan, wheel / buttons / pinch-free +/- to zoom, click or
// Enter on a node to open the model. Edge labels show the share each child pays its parent.

import { html, svg, type TemplateResult } from "lit-html";
import type { App } from "../app";
import { formatBps } from "../lib/format";
import { NODE_HEIGHT, NODE_WIDTH, zoomViewBox, type PlacedNode, type TreeLayout, type ViewBox } from "../lib/tree";

export class FamilyTreeView {
  private view: ViewBox | null = null;
  private base = { w: 1, h: 1 };
  private drag: { x: number; y: number; view: ViewBox; moved: boolean } | null = null;
  private layoutKey = "";

  constructor(
    private readonly app: App,
    private readonly open: (id: bigint) => void,
  ) {}

  private fit(layout: TreeLayout): void {
    // A small family keeps its natural size (about 1 unit per pixel) instead of being blown up
    // to the full width; a large one is shrunk to fit and can be zoomed.
    const screen = typeof window === "undefined" ? 960 : window.innerWidth;
    this.base = { w: Math.max(layout.width, Math.min(screen - 40, 960)), h: Math.max(layout.height, 280) };
    this.view = { x: (layout.width - this.base.w) / 2, y: (layout.height - this.base.h) / 2, ...this.base };
  }

  private zoom(factor: number, cx?: number, cy?: number): void {
    if (!this.view) return;
    this.view = zoomViewBox(this.view, factor, cx ?? this.view.x + this.view.w / 2, cy ?? this.view.y + this.view.h / 2, this.base);
    this.app.rerender();
  }

  private toViewCoords(svgEl: SVGSVGElement, clientX: number, clientY: number): { x: number; y: number } {
    const rect = svgEl.getBoundingClientRect();
    const v = this.view as ViewBox;
    // preserveAspectRatio="xMidYMid meet": one scale for both axes, content centred.
    const scale = Math.min(rect.width / v.w, rect.height / v.h) || 1;
    const offsetX = (rect.width - v.w * scale) / 2;
    const offsetY = (rect.height - v.h * scale) / 2;
    return { x: v.x + (clientX - rect.left - offsetX) / scale, y: v.y + (clientY - rect.top - offsetY) / scale };
  }

  render(layout: TreeLayout): TemplateResult {
    const key = layout.nodes.map((n) => `${n.id}@${n.x},${n.y}`).join("|");
    if (key !== this.layoutKey || !this.view) {
      this.layoutKey = key;
      this.fit(layout);
    }
    const v = this.view as ViewBox;
    const onWheel = (e: WheelEvent) => {
      e.preventDefault();
      const p = this.toViewCoords(e.currentTarget as SVGSVGElement, e.clientX, e.clientY);
      this.zoom(e.deltaY < 0 ? 1.15 : 1 / 1.15, p.x, p.y);
    };
    const onDown = (e: PointerEvent) => {
      if (e.button !== 0) return;
      this.drag = { x: e.clientX, y: e.clientY, view: { ...v }, moved: false };
    };
    const onMove = (e: PointerEvent) => {
      if (!this.drag) return;
      const svgEl = e.currentTarget as SVGSVGElement;
      const rect = svgEl.getBoundingClientRect();
      const scale = Math.min(rect.width / this.drag.view.w, rect.height / this.drag.view.h) || 1;
      const dx = (e.clientX - this.drag.x) / scale;
      const dy = (e.clientY - this.drag.y) / scale;
      if (!this.drag.moved && Math.hypot(dx, dy) * scale < 4) return;
      if (!this.drag.moved) svgEl.setPointerCapture(e.pointerId);
      this.drag.moved = true;
      this.view = { ...this.drag.view, x: this.drag.view.x - dx, y: this.drag.view.y - dy };
      this.app.rerender();
    };
    const onUp = () => {
      this.drag = null;
    };
    const edgeLabel = (x1: number, y1: number, x2: number, y2: number) => ({ x: (x1 + x2) / 2, y: (y1 + y2) / 2 });

    return html`<div class="tree-wrap">
      <div class="tree-controls" role="toolbar" aria-label="Zoom">
        <button @click=${() => this.zoom(1.25)} data-testid="tree-zoom-in" aria-label="Zoom in">+</button>
        <button @click=${() => this.zoom(1 / 1.25)} data-testid="tree-zoom-out" aria-label="Zoom out">−</button>
        <button @click=${() => { this.fit(layout); this.app.rerender(); }} data-testid="tree-fit">Fit</button>
      </div>
      <svg class="tree" data-testid="family-tree" role="img" aria-label="Family tree of models"
        viewBox="${v.x} ${v.y} ${v.w} ${v.h}" preserveAspectRatio="xMidYMid meet"
        @wheel=${onWheel} @pointerdown=${onDown} @pointermove=${onMove} @pointerup=${onUp} @pointercancel=${onUp}>
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" class="arrowhead"></path>
          </marker>
        </defs>
        ${layout.edges.map((e) => {
          const mid = edgeLabel(e.x1, e.y1, e.x2, e.y2);
          const c = (e.y2 - e.y1) / 2;
          return svg`<g class="edge" data-testid=${`tree-edge-${e.from}-${e.to}`}>
            <path d="M${e.x1},${e.y1} C${e.x1},${e.y1 + c} ${e.x2},${e.y2 - c} ${e.x2},${e.y2 - 2}" marker-end="url(#arrow)"></path>
            <rect x=${mid.x - 26} y=${mid.y - 10} width="52" height="20" rx="10" class="edge-pill"></rect>
            <text x=${mid.x} y=${mid.y + 4} text-anchor="middle" class="edge-label">${formatBps(e.shareBps)}</text>
            <title>Model #${e.to} pays ${formatBps(e.shareBps)} of its lineage revenue up to #${e.from}</title>
          </g>`;
        })}
        ${layout.nodes.map(
          (n) => svg`<g class="node node-${n.role}" tabindex="0" role="link" data-testid=${`tree-node-${n.id}`}
              transform="translate(${n.x},${n.y})"
              @click=${() => { if (!this.drag?.moved) this.open(n.id); }}
              @keydown=${(e: KeyboardEvent) => { if (e.key === "Enter" || e.key === " ") this.open(n.id); }}>
            <rect width=${NODE_WIDTH} height=${NODE_HEIGHT} rx="10"></rect>
            <text x=${NODE_WIDTH / 2} y="20" text-anchor="middle" class="node-title">${truncate(n.label, 20)}</text>
            <text x=${NODE_WIDTH / 2} y="37" text-anchor="middle" class="node-sub">${roleWords(n)}</text>
            <title>${n.label} — open</title>
          </g>`,
        )}
      </svg>
      <p class="muted small">Drag to pan, scroll or use +/− to zoom, click a model to open it. Arrows point from parent to derivative; each label is the share of the derivative's lineage revenue paid to that parent.</p>
    </div>`;
  }
}

function roleWords(n: PlacedNode): string {
  if (n.role === "focus") return "this model";
  if (n.role === "descendant") return "derivative";
  if (n.role === "ancestor") return "ancestor";
  return n.generation === 0 ? "root model" : `derivative · gen ${n.generation}`;
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
