// The test wallet: an EIP-1193 provider injected as window.ethereum that forwards every
// request to Anvil (whose accounts are unlocked), answers account and chain requests itself,
// lets the test switch accounts and chains (emitting accountsChanged / chainChanged like a real
// wallet) and reject the next request of a method as a person would.

export interface InjectedWalletOptions {
  rpcUrl: string;
  chainId: number;
  account: string;
}

/** Runs in the page (serialised by page.addInitScript); must be self-contained. */
export function installWallet(options: InjectedWalletOptions): void {
  type Listener = (...args: unknown[]) => void;
  const listeners = new Map<string, Set<Listener>>();
  // Like a real wallet, the chosen account and this site's authorisation survive a reload.
  const saved = JSON.parse(sessionStorage.getItem("omlTestWallet") ?? "null") as { account: string; connected: boolean } | null;
  let account = saved?.account ?? options.account;
  let connected = saved?.connected ?? false;
  const save = () => sessionStorage.setItem("omlTestWallet", JSON.stringify({ account, connected }));
  let chainId = options.chainId;
  let nextId = 1;
  /** Methods whose next request the "person" rejects in the wallet (EIP-1193 code 4001). */
  const rejecting = new Set<string>();
  const emit = (event: string, ...args: unknown[]) => listeners.get(event)?.forEach((l) => l(...args));
  const forward = async (method: string, params: unknown) => {
    const response = await fetch(options.rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: nextId++, method, params: params ?? [] }),
    });
    const body = (await response.json()) as { result?: unknown; error?: { code: number; message: string; data?: unknown } };
    if (body.error) throw Object.assign(new Error(body.error.message), { code: body.error.code, data: body.error.data });
    return body.result;
  };
  const provider = {
    isOmlTestWallet: true,
    async request({ method, params }: { method: string; params?: unknown }) {
      if (rejecting.delete(method)) throw Object.assign(new Error("User rejected the request."), { code: 4001 });
      switch (method) {
        case "eth_requestAccounts":
          connected = true;
          save();
          return [account];
        case "eth_accounts":
          return connected ? [account] : [];
        case "eth_chainId":
          return `0x${chainId.toString(16)}`;
        case "net_version":
          return String(chainId);
        case "wallet_switchEthereumChain": {
          const wanted = Number((params as [{ chainId: string }])[0].chainId);
          if (wanted !== options.chainId) throw Object.assign(new Error("Unrecognized chain"), { code: 4902 });
          chainId = wanted;
          emit("chainChanged", `0x${chainId.toString(16)}`);
          return null;
        }
        case "wallet_addEthereumChain":
          return null;
        default:
          return forward(method, params);
      }
    },
    on(event: string, listener: Listener) {
      if (!listeners.has(event)) listeners.set(event, new Set());
      listeners.get(event)?.add(listener);
    },
    removeListener(event: string, listener: Listener) {
      listeners.get(event)?.delete(listener);
    },
  };
  const control = {
    setAccount(next: string) {
      account = next;
      save();
      emit("accountsChanged", connected ? [account] : []);
    },
    /** The next `method` request is rejected as a person clicking "Reject" would. */
    rejectNext(method: string) {
      rejecting.add(method);
    },
    /** Pretend the wallet moved to another chain (for the wrong-network banner). */
    setChain(next: number) {
      chainId = next;
      emit("chainChanged", `0x${next.toString(16)}`);
    },
  };
  Object.assign(window, { ethereum: provider, __omlWallet: control });
}
