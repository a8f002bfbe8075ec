// Shared shapes between the proxy's agent (certificates, config stream) and its data plane.

export interface TlsMaterial {
  keyPem: string;
  /** Leaf followed by intermediates. */
  certChainPem: string;
  trustBundlePem: string;
  spiffeId: string;
}

/** A value that changes over time (the running snapshot, the current certificate). */
export interface Source<T> {
  current(): T | undefined;
  subscribe(fn: (value: T) => void): () => void;
}
