// Injected EIP-1193 wallet: connect, follow account/chain changes, switch to the configured
// chain (adding it when the wallet does not know it). Without a wallet the app is read-only.

import { getAddress, numberToHex, type Address, type EIP1193Provider } from "viem";
import type { RuntimeConfig } from "./config";

export interface WalletState {
  provider: EIP1193Provider | null;
  account: Address | null;
  chainId: number | null;
  connecting: boolean;
}

export function injectedProvider(): EIP1193Provider | null {
  const w = globalThis as unknown as { ethereum?: EIP1193Provider };
  return w.ethereum ?? null;
}

export class Wallet {
  state: WalletState;
  private listeners = new Set<() => void>();

  constructor(private readonly config: RuntimeConfig, provider: EIP1193Provider | null = injectedProvider()) {
    this.state = { provider, account: null, chainId: null, connecting: false };
    if (provider) {
      provider.on?.("accountsChanged", (accounts: readonly string[]) => this.setAccounts(accounts));
      provider.on?.("chainChanged", (chainId: string) => this.update({ chainId: Number(chainId) }));
    }
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private update(patch: Partial<WalletState>): void {
    this.state = { ...this.state, ...patch };
    for (const listener of this.listeners) listener();
  }

  private setAccounts(accounts: readonly string[]): void {
    const first = accounts[0];
    this.update({ account: first ? getAddress(first) : null });
  }

  get wrongNetwork(): boolean {
    return this.state.account !== null && this.state.chainId !== null && this.state.chainId !== this.config.chainId;
  }

  /** Pick up an already authorised wallet without prompting. */
  async restore(): Promise<void> {
    const provider = this.state.provider;
    if (!provider) return;
    try {
      const [accounts, chainId] = await Promise.all([provider.request({ method: "eth_accounts" }), provider.request({ method: "eth_chainId" })]);
      this.update({ chainId: Number(chainId) });
      this.setAccounts(accounts);
    } catch {
      // A wallet that fails here is treated as absent until the person clicks connect.
    }
  }

  async connect(): Promise<void> {
    const provider = this.state.provider;
    if (!provider) {
      const error = new Error("No wallet found in this browser. Install one (e.g. MetaMask), or keep browsing read-only.");
      error.name = "ProviderNotFound";
      throw error;
    }
    this.update({ connecting: true });
    try {
      const accounts = await provider.request({ method: "eth_requestAccounts" });
      const chainId = Number(await provider.request({ method: "eth_chainId" }));
      this.update({ chainId });
      this.setAccounts(accounts);
    } finally {
      this.update({ connecting: false });
    }
  }

  disconnect(): void {
    this.update({ account: null });
  }

  /** Ask the wallet to switch to the configured chain; add it first if the wallet lacks it. */
  async switchChain(): Promise<void> {
    const provider = this.state.provider;
    if (!provider) return;
    const chainId = numberToHex(this.config.chainId);
    try {
      await provider.request({ method: "wallet_switchEthereumChain", params: [{ chainId }] });
    } catch (error) {
      const code = (error as { code?: number }).code;
      if (code !== 4902 && code !== -32603) throw error;
      await provider.request({
        method: "wallet_addEthereumChain",
        params: [
          {
            chainId,
            chainName: this.config.chainName,
            nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
            rpcUrls: [this.config.rpcUrl],
          },
        ],
      });
    }
    this.update({ chainId: Number(await provider.request({ method: "eth_chainId" })) });
  }
}
