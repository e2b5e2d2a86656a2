// Hash routes (#/model/3): the static server needs no rewrite rules and links survive reloads.

export interface Route {
  name: string;
  params: Record<string, string>;
}

const PATTERNS: [string, RegExp, string[]][] = [
  ["models", /^\/?(?:models)?\/?$/, []],
  ["model", /^\/model\/(\d+)\/?$/, ["id"]],
  ["tree", /^\/tree(?:\/(\d+))?\/?$/, ["id"]],
  ["create", /^\/create\/?$/, []],
  ["host", /^\/host\/?$/, []],
  ["earnings", /^\/earnings\/?$/, []],
  ["challenges", /^\/challenges\/?$/, []],
  ["governance", /^\/governance(?:\/(\d+))?\/?$/, ["id"]],
];

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, "").split("?")[0] ?? "";
  for (const [name, pattern, keys] of PATTERNS) {
    const match = pattern.exec(path);
    if (!match) continue;
    const params: Record<string, string> = {};
    keys.forEach((key, i) => {
      const value = match[i + 1];
      if (value !== undefined) params[key] = value;
    });
    return { name, params };
  }
  return { name: "notFound", params: { path } };
}

export const href = {
  models: () => "#/models",
  model: (id: bigint | number | string) => `#/model/${id}`,
  tree: (id?: bigint | number | string) => (id === undefined ? "#/tree" : `#/tree/${id}`),
  create: () => "#/create",
  host: () => "#/host",
  earnings: () => "#/earnings",
  challenges: () => "#/challenges",
  governance: (id?: bigint | number | string) => (id === undefined ? "#/governance" : `#/governance/${id}`),
};
