import { describe, expect, it } from "vitest";
import { familyOf, layoutFamily, NODE_HEIGHT, NODE_WIDTH, zoomViewBox, type FamilyNode } from "../src/lib/tree";

const node = (id: number, parents: [number, number][] = []): FamilyNode => ({
  id: BigInt(id),
  label: `Model #${id}`,
  parents: parents.map(([p, shareBps]) => ({ id: BigInt(p), shareBps })),
});

// 1 and 2 are roots; 3 = 1@20%; 4 = 3@10% + 2@5%; 5 = 2@30% (unrelated to 1 and 3).
const ALL = [node(1), node(2), node(3, [[1, 2000]]), node(4, [[3, 1000], [2, 500]]), node(5, [[2, 3000]])];

describe("familyOf", () => {
  it("collects every ancestor and descendant of a model, and nothing else", () => {
    const f = familyOf(ALL, 3n);
    expect(f?.members.map((n) => n.id)).toEqual([1n, 3n, 4n]);
    expect([...(f?.ancestors ?? [])]).toEqual([1n]);
    expect([...(f?.descendants ?? [])]).toEqual([4n]);
    const of4 = familyOf(ALL, 4n);
    expect(new Set(of4?.ancestors)).toEqual(new Set([1n, 2n, 3n]));
    expect(of4?.descendants.size).toBe(0);
  });

  it("returns every model without a focus and null for an unknown one", () => {
    expect(familyOf(ALL, null)?.members).toHaveLength(5);
    expect(familyOf(ALL, 99n)).toBeNull();
  });
});

describe("layoutFamily", () => {
  it("puts parents above children and labels each edge with its share", () => {
    const f = familyOf(ALL, 4n);
    if (!f) throw new Error("no family");
    const layout = layoutFamily(f.members, 4n, f);
    const at = new Map(layout.nodes.map((n) => [n.id, n]));
    expect(at.get(1n)?.generation).toBe(0);
    expect(at.get(2n)?.generation).toBe(0);
    expect(at.get(3n)?.generation).toBe(1);
    expect(at.get(4n)?.generation).toBe(2); // longest path from a root
    for (const e of layout.edges) expect(at.get(e.from)!.y).toBeLessThan(at.get(e.to)!.y);
    expect(layout.edges.map((e) => [e.from, e.to, e.shareBps])).toEqual(
      expect.arrayContaining([
        [1n, 3n, 2000],
        [3n, 4n, 1000],
        [2n, 4n, 500],
      ]),
    );
    expect(layout.edges).toHaveLength(3);
    expect(at.get(4n)?.role).toBe("focus");
    expect(at.get(1n)?.role).toBe("ancestor");
  });

  it("never overlaps two nodes and keeps them inside the drawing", () => {
    const layout = layoutFamily(ALL);
    for (const a of layout.nodes) {
      expect(a.x).toBeGreaterThanOrEqual(0);
      expect(a.x + NODE_WIDTH).toBeLessThanOrEqual(layout.width);
      expect(a.y + NODE_HEIGHT).toBeLessThanOrEqual(layout.height);
      for (const b of layout.nodes) {
        if (a === b) continue;
        const apart = Math.abs(a.x - b.x) >= NODE_WIDTH || Math.abs(a.y - b.y) >= NODE_HEIGHT;
        expect(apart, `#${a.id} and #${b.id} overlap`).toBe(true);
      }
    }
  });

  it("orders a layer so that edges do not cross when they need not", () => {
    // Roots 1, 2; children 3 (of 2) and 4 (of 1), registered in crossing order.
    const layout = layoutFamily([node(1), node(2), node(3, [[2, 100]]), node(4, [[1, 100]])]);
    const x = new Map(layout.nodes.map((n) => [n.id, n.x]));
    expect(Math.sign(x.get(1n)! - x.get(2n)!)).toBe(Math.sign(x.get(4n)! - x.get(3n)!));
  });

  it("drops edges to models outside the drawn family", () => {
    const layout = layoutFamily([node(3, [[1, 2000]])]);
    expect(layout.edges).toEqual([]);
    expect(layout.nodes[0]?.generation).toBe(0);
  });
});

describe("zoomViewBox", () => {
  const base = { w: 800, h: 400 };
  it("zooms around a point, keeping that point fixed", () => {
    const view = { x: 0, y: 0, ...base };
    const z = zoomViewBox(view, 2, 200, 100, base);
    expect(z).toEqual({ x: 100, y: 50, w: 400, h: 200 });
    // The point (200, 100) sits at the same fraction of the view before and after.
    expect((200 - z.x) / z.w).toBeCloseTo((200 - view.x) / view.w);
  });

  it("clamps the zoom level", () => {
    let view = { x: 0, y: 0, ...base };
    for (let i = 0; i < 50; i++) view = zoomViewBox(view, 1.5, 400, 200, base);
    expect(base.w / view.w).toBeCloseTo(5);
    for (let i = 0; i < 50; i++) view = zoomViewBox(view, 1 / 1.5, 400, 200, base);
    expect(base.w / view.w).toBeCloseTo(0.2);
  });
});
