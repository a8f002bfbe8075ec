// The proxy's side of the config stream, by hand: an in-process control plane on a temp store (removed
// afterwards) and raw HTTP/2 clients that say exactly what a test wants, when it wants — hello and
// nothing else, a close at any moment, a reader that stops reading, a connection through a relay
// that can be cut. For the stream's hardening tests; the real client is proxy/agent/config-client.ts.

import { mkdtempSync, rmSync } from "node:fs";
import { connect, type ClientHttp2Session, type ClientHttp2Stream } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import {
  startControlPlane,
  type ControlPlane,
  type ControlPlaneOptions,
} from "../../src/control-plane/control-plane.ts";
import { resourceKey, type Workload } from "../../src/model/resources.ts";
import {
  encodeMessage,
  LineDecoder,
  MAX_SNAPSHOT_MESSAGE_BYTES,
  STREAM_PATH,
  type ControlPlaneMessage,
  type HelloMessage,
} from "../../src/model/stream-protocol.ts";
import { openEmbeddedStore } from "../../src/store/embedded/index.ts";
import type { Clock, Store } from "../../src/store/store.ts";

/** A stored Service `name` in "default" with one HTTP port (8080), as the stream tests apply it. */
export function serviceJson(name: string): string {
  return JSON.stringify({
    apiVersion: "weft.dev/v1alpha1",
    kind: "Service",
    metadata: { name, namespace: "default" },
    spec: { ports: [{ port: 8080, protocol: "http" }] },
  });
}

export interface Harness {
  cp: ControlPlane;
  store: Store;
  /**
   * Opens a stream as `service` and sends hello (unless hello is null). `autoAck`: every snapshot or
   * delta is ACKed as it arrives (the control plane sends the next one only once the last is answered).
   */
  open(
    service: string,
    hello?: Partial<HelloMessage> | null,
    opts?: { url?: string; autoAck?: boolean },
  ): Promise<RawProxy>;
  /** The stored Workload, if any. */
  workload(name: string): Promise<Workload | undefined>;
}

export interface RawProxy {
  session: ClientHttp2Session;
  stream: ClientHttp2Stream;
  messages: ControlPlaneMessage[];
  send(m: object): boolean;
  /** Resolves when the stream has closed. */
  closed: Promise<void>;
  /** Resolves with the first message matching `pred`, or rejects when the stream closes first. */
  next(pred: (m: ControlPlaneMessage) => boolean): Promise<ControlPlaneMessage>;
}

export async function startHarness(
  t: TestContext,
  opts: {
    graceSeconds?: number;
    debounceMs?: number;
    clock?: Clock;
    /** The control plane gets this instead of the store (e.g. one that pauses chosen calls). */
    wrapStore?: (store: Store) => Store;
    streamAdmission?: ControlPlaneOptions["streamAdmission"];
  } = {},
): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), "weft-stream-"));
  const store = await openEmbeddedStore(join(dir, "store"), { clock: opts.clock });
  const cp = await startControlPlane({
    dataDir: dir,
    listen: "127.0.0.1:0",
    streamListen: "127.0.0.1:0",
    graceSeconds: opts.graceSeconds ?? 1,
    debounceMs: opts.debounceMs ?? 5,
    store: opts.wrapStore ? opts.wrapStore(store) : store,
    clock: opts.clock,
    streamAdmission: opts.streamAdmission,
  });
  const sessions = new Set<ClientHttp2Session>();
  t.after(async () => {
    for (const s of sessions) s.destroy();
    await cp.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function open(
    service: string,
    hello: Partial<HelloMessage> | null = {},
    o: { url?: string; autoAck?: boolean } = {},
  ): Promise<RawProxy> {
    const id = `spiffe://weft.local/ns/default/sa/${service}`;
    const cert = await cp.ca.issueWorkloadCertificate(id);
    const session = connect(o.url ?? cp.streamUrl, {
      ca: cp.ca.trustBundlePem,
      key: cert.keyPem,
      cert: cert.chainPem,
    });
    sessions.add(session);
    session.on("error", () => {});
    session.on("close", () => sessions.delete(session));
    const stream = session.request({ ":method": "POST", ":path": STREAM_PATH }, { endStream: false });
    const messages: ControlPlaneMessage[] = [];
    const waiters = new Set<() => void>();
    const decoder = new LineDecoder(MAX_SNAPSHOT_MESSAGE_BYTES);
    stream.on("data", (c: Buffer) =>
      decoder.push(c, (m) => {
        const msg = m as ControlPlaneMessage;
        messages.push(msg);
        if (o.autoAck && (msg.type === "snapshot" || msg.type === "delta"))
          send({ type: "ack", nonce: msg.nonce, version: msg.version });
        for (const w of waiters) w();
      }),
    );
    stream.on("error", () => {});
    stream.on("end", () => stream.end());
    const closed = new Promise<void>((r) =>
      stream.on("close", () => {
        r();
        for (const w of waiters) w();
      }),
    );
    const next = (pred: (m: ControlPlaneMessage) => boolean) =>
      new Promise<ControlPlaneMessage>((resolve, reject) => {
        const check = () => {
          const m = messages.find(pred);
          if (m) resolve(m);
          else if (stream.closed) reject(new Error(`stream closed; got ${JSON.stringify(messages)}`));
          else return;
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    const send = (m: object) => stream.write(encodeMessage(m as never));
    if (hello !== null)
      send({
        type: "hello",
        workload: `${service}-1`,
        address: "127.0.0.1",
        port: 15006,
        appPort: 8080,
        deltas: true,
        ...hello,
      });
    return { session, stream, messages, send, closed, next };
  }

  return {
    cp,
    store,
    open,
    async workload(name) {
      const kv = await store.get(resourceKey("Workload", "default", name));
      return kv && (JSON.parse(kv.value) as Workload);
    },
  };
}
