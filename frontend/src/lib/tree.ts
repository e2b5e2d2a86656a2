// Family-tree graph and layout (pure: no DOM). A model's ancestors and descendants are laid
// out in generations (parents above children), ordered by a few barycenter sweeps so edges
// cross little, and every edge carries the share (bps) the child pays to that parent.

export interface FamilyNode {
  id: bigint;
  label: string;
  parents: readonly { id: bigint; shareBps: number }[];
}

export interface PlacedNode {
  id: bigint;
  label: string;
  x: number;
  y: number;
  generation: number;
  role: "focus" | "ancestor" | "descendant" | "relative";
}

export interface PlacedEdge {
  from: bigint; // parent
  to: bigint; // child
  shareBps: number;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

export interface TreeLayout {
  nodes: PlacedNode[];
  edges: PlacedEdge[];
  width: number;
  height: number;
}

export const NODE_WIDTH = 150;
export const NODE_HEIGHT = 48;
const GAP_X = 40;
const GAP_Y = 70;
const MARGIN = 30;

function closure(start: bigint, next: (id: bigint) => readonly bigint[]): Set<bigint> {
  const seen = new Set<bigint>();
  const stack = [...next(start)];
  while (stack.length) {
    const id = stack.pop() as bigint;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...next(id));
  }
  return seen;
}

/**
 * The family of `focus`: itself, all ancestors and all descendants (with `everything`, every
 * model). Returns null when `focus` is unknown.
 */
export function familyOf(all: readonly FamilyNode[], focus: bigint | null): { members: FamilyNode[]; ancestors: Set<bigint>; descendants: Set<bigint> } | null {
  const byId = new Map(all.map((n) => [n.id, n]));
  const children = new Map<bigint, bigint[]>();
  for (const node of all) for (const p of node.parents) children.set(p.id, [...(children.get(p.id) ?? []), node.id]);
  if (focus === null) return { members: [...all], ancestors: new Set(), descendants: new Set() };
  if (!byId.has(focus)) return null;
  const ancestors = closure(focus, (id) => byId.get(id)?.parents.map((p) => p.id) ?? []);
  const descendants = closure(focus, (id) => children.get(id) ?? []);
  const keep = new Set([focus, ...ancestors, ...descendants]);
  return { members: all.filter((n) => keep.has(n.id)), ancestors, descendants };
}

/** Lay out `members` (a subgraph closed enough to draw; edges to outsiders are dropped). */
export function layoutFamily(members: readonly FamilyNode[], focus: bigint | null = null, roles?: { ancestors: Set<bigint>; descendants: Set<bigint> }): TreeLayout {
  const byId = new Map(members.map((n) => [n.id, n]));
  const parentsIn = (n: FamilyNode) => n.parents.filter((p) => byId.has(p.id));

  // Generation = longest path from a root inside the subgraph (parents have lower ids, so a
  // pass in id order sees every parent before its children).
  const generation = new Map<bigint, number>();
  const sorted = [...members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const node of sorted) {
    const g = parentsIn(node).reduce((max, p) => Math.max(max, (generation.get(p.id) ?? 0) + 1), 0);
    generation.set(node.id, g);
  }
  const layers: bigint[][] = [];
  for (const node of sorted) {
    const g = generation.get(node.id) ?? 0;
    (layers[g] ??= []).push(node.id);
  }

  // Barycenter ordering: down sweeps by parents' positions, up sweeps by children's.
  const children = new Map<bigint, bigint[]>();
  for (const node of members) for (const p of parentsIn(node)) children.set(p.id, [...(children.get(p.id) ?? []), node.id]);
  const position = new Map<bigint, number>();
  const index = () => layers.forEach((layer) => layer.forEach((id, i) => position.set(id, i)));
  index();
  const sweep = (layer: bigint[], neighbours: (id: bigint) => bigint[]) => {
    const score = new Map<bigint, number>();
    for (const id of layer) {
      const ns = neighbours(id).filter((n) => position.has(n));
      score.set(id, ns.length ? ns.reduce((s, n) => s + (position.get(n) ?? 0), 0) / ns.length : (position.get(id) ?? 0));
    }
    layer.sort((a, b) => (score.get(a) ?? 0) - (score.get(b) ?? 0) || (a < b ? -1 : 1));
    layer.forEach((id, i) => position.set(id, i));
  };
  for (let round = 0; round < 4; round++) {
    for (let g = 1; g < layers.length; g++) sweep(layers[g] ?? [], (id) => parentsIn(byId.get(id) as FamilyNode).map((p) => p.id));
    for (let g = layers.length - 2; g >= 0; g--) sweep(layers[g] ?? [], (id) => children.get(id) ?? []);
  }

  const widest = Math.max(1, ...layers.map((l) => l.length));
  const width = MARGIN * 2 + widest * NODE_WIDTH + (widest - 1) * GAP_X;
  const height = MARGIN * 2 + layers.length * NODE_HEIGHT + Math.max(0, layers.length - 1) * GAP_Y;
  const nodes: PlacedNode[] = [];
  const at = new Map<bigint, PlacedNode>();
  layers.forEach((layer, g) => {
    const layerWidth = layer.length * NODE_WIDTH + (layer.length - 1) * GAP_X;
    const left = (width - layerWidth) / 2;
    layer.forEach((id, i) => {
      const node = byId.get(id) as FamilyNode;
      const role: PlacedNode["role"] =
        id === focus ? "focus" : roles?.ancestors.has(id) ? "ancestor" : roles?.descendants.has(id) ? "descendant" : "relative";
      const placed = { id, label: node.label, x: left + i * (NODE_WIDTH + GAP_X), y: MARGIN + g * (NODE_HEIGHT + GAP_Y), generation: g, role };
      nodes.push(placed);
      at.set(id, placed);
    });
  });
  const edges: PlacedEdge[] = [];
  for (const node of members) {
    const child = at.get(node.id) as PlacedNode;
    for (const p of parentsIn(node)) {
      const parent = at.get(p.id) as PlacedNode;
      edges.push({
        from: p.id,
        to: node.id,
        shareBps: p.shareBps,
        x1: parent.x + NODE_WIDTH / 2,
        y1: parent.y + NODE_HEIGHT,
        x2: child.x + NODE_WIDTH / 2,
        y2: child.y,
      });
    }
  }
  return { nodes, edges, width, height };
}

/** Zoom a viewBox around a point (in viewBox coordinates), clamped to [minScale, maxScale]. */
export interface ViewBox {
  x: number;
  y: number;
  w: number;
  h: number;
}

export function zoomViewBox(view: ViewBox, factor: number, cx: number, cy: number, base: { w: number; h: number }, min = 0.2, max = 5): ViewBox {
  const scale = base.w / view.w; // current zoom level
  const nextScale = Math.min(max, Math.max(min, scale * factor));
  const w = base.w / nextScale;
  const h = base.h / nextScale;
  return { x: cx - ((cx - view.x) * w) / view.w, y: cy - ((cy - view.y) * h) / view.h, w, h };
}
