import type { IncomingMessage, Server, ServerResponse } from "node:http";
export interface RuntimeConfigJson {
  rpcUrl: string;
  chainId: number;
  chainName: string;
  deployment: string;
  ipfsGateway: string;
  confirmations: number;
  pollingIntervalMs: number;
}
export function runtimeConfig(env?: NodeJS.ProcessEnv): RuntimeConfigJson;
export function gatewayUrl(env?: NodeJS.ProcessEnv): string;
export function createHandler(
  env?: NodeJS.ProcessEnv,
  options?: { withDist?: boolean },
): (req: IncomingMessage, res: ServerResponse, next?: () => void) => void;
export function serve(env?: NodeJS.ProcessEnv, port?: number): Promise<{ url: string; server: Server }>;
