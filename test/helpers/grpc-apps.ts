// gRPC apps for tests: a real @grpc/grpc-js server and client for a small echo service defined
// without .proto files (a service definition whose messages are JSON, serialised by hand), with
// the four call kinds — unary, server streaming, client streaming, bidi — and the knobs tests need:
// fail the next calls with a status, hang until cancelled, report the metadata it saw, and stream
// with back-pressure (a writer that waits for 'drain', observable from the test).
//
// Also: a bare node:http2 server that answers every stream with one fixed trailers-only header block,
// to show what a gRPC client makes of a reply (weft's gRPC-shaped local replies).

import * as grpc from "@grpc/grpc-js";
import { once } from "node:events";
import { connect as connectH2, createServer as createH2Server, type Http2Server } from "node:http2";
import type { AddressInfo } from "node:net";
import { after } from "node:test";

/** The echo service's messages: `seq` orders stream items; `pad` adds bulk. */
export interface EchoMessage {
  app?: string;
  text?: string;
  seq?: number;
  pad?: string;
  /** Server streaming: how many replies, and the size of each one's pad. */
  count?: number;
  size?: number;
  /** Echoed metadata the server saw (unary). */
  metadata?: Record<string, string>;
  /** Client streaming's answer: messages and pad bytes received. */
  received?: number;
  bytes?: number;
}

// Registered at load time (as in mesh.ts): `after` called inside a test would run when that test
// ends, and a test file's mesh shares its apps and clients between tests.
const servers = new Set<grpc.Server>();
const clients = new Set<grpc.Client>();
const h2Servers = new Set<Http2Server>();
after(() => {
  for (const c of clients) c.close();
  for (const s of servers) s.forceShutdown();
  for (const s of h2Servers) s.close();
});

const json = {
  serialize: (v: EchoMessage) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString("utf8")) as EchoMessage,
};

function method(name: string, requestStream: boolean, responseStream: boolean) {
  return {
    path: `/weft.test.Echo/${name}`,
    requestStream,
    responseStream,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
    originalName: name,
  };
}

/** weft.test.Echo: Unary, ServerStream, ClientStream, Bidi. */
export const ECHO_SERVICE = {
  Unary: method("Unary", false, false),
  ServerStream: method("ServerStream", false, true),
  ClientStream: method("ClientStream", true, false),
  Bidi: method("Bidi", true, true),
} as const satisfies grpc.ServiceDefinition;

export const EchoClient = grpc.makeGenericClientConstructor(ECHO_SERVICE, "Echo");
export type EchoClient = InstanceType<typeof EchoClient>;

/** Progress of the server's current streaming writer: how far it got and whether it waits for 'drain'. */
export interface WriterProgress {
  written: number;
  waitingForDrain: boolean;
}

export interface GrpcApp {
  name: string;
  port: number;
  server: grpc.Server;
  /** Every call's method path and metadata, in arrival order. */
  calls: { path: string; metadata: Record<string, string> }[];
  /** The next `n` unary calls fail with `code` (a trailers-only error response). */
  failNext(n: number, code: grpc.status, details?: string): void;
  /**
   * The next `n` client-streaming or bidi calls fail with `code` as soon as they arrive, before
   * reading anything the client sends (a trailers-only error response while the client still writes).
   */
  failNextStreams(n: number, code: grpc.status): void;
  /** Messages received by client-streaming calls so far (all calls), as the app reads them. */
  streamed: { messages: number };
  /**
   * Unary calls whose text is "hang" never answer; resolved when such a call is cancelled, with the
   * time its deadline (from grpc-timeout) left when it arrived, in ms (Infinity without one).
   */
  cancelled: Promise<number>;
  /** The server-streaming writer's progress (back-pressure tests). */
  writer: WriterProgress;
  /** Client streaming: pause reading until `resume()` (back-pressure tests). */
  pauseReading(): void;
  resumeReading(): void;
}

function metadataOf(call: { metadata: grpc.Metadata }): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(call.metadata.getMap())) out[k] = String(v);
  return out;
}

export async function startGrpcApp(name: string): Promise<GrpcApp> {
  const calls: GrpcApp["calls"] = [];
  let failures: { n: number; code: grpc.status; details: string } = { n: 0, code: 0, details: "" };
  const streamFailures = { n: 0, code: grpc.status.OK };
  const streamed = { messages: 0 };
  /** Fails a streaming call at once when one is due to fail. */
  const failStream = (fail: (e: grpc.StatusObject) => void): boolean => {
    if (streamFailures.n === 0) return false;
    streamFailures.n--;
    fail({
      code: streamFailures.code,
      details: `${name} says no to the stream`,
      metadata: new grpc.Metadata(),
    });
    return true;
  };
  let onCancel: (leftMs: number) => void = () => {};
  const cancelled = new Promise<number>((r) => (onCancel = r));
  const writer: WriterProgress = { written: 0, waitingForDrain: false };
  let paused = false;
  const pausedCalls = new Set<grpc.ServerReadableStream<EchoMessage, EchoMessage>>();

  const server = new grpc.Server();
  server.addService(ECHO_SERVICE, {
    Unary(call: grpc.ServerUnaryCall<EchoMessage, EchoMessage>, cb: grpc.sendUnaryData<EchoMessage>) {
      const metadata = metadataOf(call);
      calls.push({ path: call.getPath(), metadata });
      if (failures.n > 0) {
        failures.n--;
        cb({ code: failures.code, details: failures.details });
        return;
      }
      if (call.request.text === "hang") {
        const left = Number(call.getDeadline()) - Date.now();
        call.on("cancelled", () => onCancel(left));
        return;
      }
      cb(null, { app: name, text: call.request.text, metadata });
    },
    ServerStream(call: grpc.ServerWritableStream<EchoMessage, EchoMessage>) {
      calls.push({ path: call.getPath(), metadata: metadataOf(call) });
      const { count = 0, size = 0 } = call.request;
      const pad = "x".repeat(size);
      writer.written = 0;
      const pump = () => {
        writer.waitingForDrain = false;
        while (writer.written < count) {
          const ok = call.write({ seq: writer.written, pad });
          writer.written++;
          if (!ok) {
            writer.waitingForDrain = true;
            call.once("drain", pump);
            return;
          }
        }
        call.end();
      };
      pump();
    },
    ClientStream(
      call: grpc.ServerReadableStream<EchoMessage, EchoMessage>,
      cb: grpc.sendUnaryData<EchoMessage>,
    ) {
      calls.push({ path: call.getPath(), metadata: metadataOf(call) });
      if (failStream((e) => cb(e))) return;
      let received = 0;
      let bytes = 0;
      let expected = 0;
      let outOfOrder = false;
      if (paused) {
        call.pause();
        pausedCalls.add(call);
      }
      call.on("data", (m: EchoMessage) => {
        if (m.seq !== expected++) outOfOrder = true;
        received++;
        streamed.messages++;
        bytes += m.pad?.length ?? 0;
      });
      call.on("end", () => {
        pausedCalls.delete(call);
        if (outOfOrder) cb({ code: grpc.status.DATA_LOSS, details: "messages out of order" });
        else cb(null, { app: name, received, bytes });
      });
    },
    Bidi(call: grpc.ServerDuplexStream<EchoMessage, EchoMessage>) {
      calls.push({ path: call.getPath(), metadata: metadataOf(call) });
      if (failStream((e) => call.emit("error", e))) return;
      // Echo with back-pressure: stop reading while the reply side is full.
      call.on("data", (m: EchoMessage) => {
        if (!call.write(m)) {
          call.pause();
          call.once("drain", () => call.resume());
        }
      });
      call.on("end", () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  servers.add(server);
  return {
    name,
    port,
    server,
    calls,
    failNext(n, code, details = `${name} says no`) {
      failures = { n, code, details };
    },
    failNextStreams(n, code) {
      streamFailures.n = n;
      streamFailures.code = code;
    },
    streamed,
    cancelled,
    writer,
    pauseReading() {
      paused = true;
    },
    resumeReading() {
      paused = false;
      for (const c of pausedCalls) c.resume();
      pausedCalls.clear();
    },
  };
}

/** A client for `target` ("127.0.0.1:port"), plaintext h2c, closed after the test file. */
export function echoClient(target: string, options: grpc.ClientOptions = {}): EchoClient {
  const client = new EchoClient(target, grpc.credentials.createInsecure(), options);
  clients.add(client);
  return client;
}

export interface CallResult {
  value?: EchoMessage;
  error?: grpc.ServiceError;
}

/** A unary call (deadline 10 s unless given) as a promise that never rejects: the error, if any, is in the result. */
export function unary(
  client: EchoClient,
  req: EchoMessage,
  opts: { metadata?: Record<string, string>; deadlineMs?: number; method?: string } = {},
): Promise<CallResult> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(opts.metadata ?? {})) md.set(k, v);
  // Always a deadline, so a broken path fails the test rather than hanging it.
  const callOpts: grpc.CallOptions = { deadline: Date.now() + (opts.deadlineMs ?? 10_000) };
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      opts.method ?? ECHO_SERVICE.Unary.path,
      json.serialize,
      json.deserialize,
      req,
      md,
      callOpts,
      (error: grpc.ServiceError | null, value?: EchoMessage) => resolve(error ? { error } : { value }),
    );
  });
}

/** Every message of a readable call, in order; rejects with the call's error. */
export async function collect(stream: NodeJS.ReadableStream): Promise<EchoMessage[]> {
  const out: EchoMessage[] = [];
  for await (const m of stream as AsyncIterable<EchoMessage>) out.push(m);
  return out;
}

/** Writes `count` messages of `size` pad bytes, honouring back-pressure; resolves when all are written. */
export async function writeAll(
  stream: grpc.ClientWritableStream<EchoMessage> | grpc.ClientDuplexStream<EchoMessage, EchoMessage>,
  count: number,
  size: number,
  progress: WriterProgress = { written: 0, waitingForDrain: false },
): Promise<void> {
  const pad = "y".repeat(size);
  for (let i = 0; i < count; i++) {
    progress.written++;
    if (!stream.write({ seq: i, pad })) {
      progress.waitingForDrain = true;
      await once(stream, "drain");
      progress.waitingForDrain = false;
    }
  }
  stream.end();
}

/**
 * A gRPC call made by hand over node:http2, for what grpc-js's client cannot show: its streams keep
 * reading into memory while paused, so only a client with real HTTP/2 flow control (Node's, paused)
 * can prove that back-pressure reaches the server. `call` starts paused; `messages()` resumes it and
 * decodes every length-prefixed message, resolving with them and the grpc-status trailer.
 */
export function rawGrpcCall(
  port: number,
  path: string,
  request: EchoMessage,
): { messages(): Promise<{ messages: EchoMessage[]; grpcStatus?: string }>; close(): void } {
  const session = connectH2(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  const body = Buffer.from(JSON.stringify(request));
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, 5);
  const call = session.request({
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
  });
  call.end(frame);
  call.pause();
  return {
    async messages() {
      const chunks: Buffer[] = [];
      let grpcStatus: string | undefined;
      call.on("trailers", (t) => (grpcStatus = String(t["grpc-status"])));
      call.on("data", (d: Buffer) => chunks.push(d));
      call.resume();
      await once(call, "end");
      session.close();
      const all = Buffer.concat(chunks);
      const messages: EchoMessage[] = [];
      for (let at = 0; at + 5 <= all.length;) {
        const len = all.readUInt32BE(at + 1);
        messages.push(JSON.parse(all.subarray(at + 5, at + 5 + len).toString("utf8")) as EchoMessage);
        at += 5 + len;
      }
      return { messages, grpcStatus };
    },
    close() {
      session.destroy();
    },
  };
}

/** A node:http2 server answering every request with `headers` as a trailers-only response. */
export async function startTrailersOnlyServer(
  status: number,
  headers: string[],
): Promise<{ port: number; server: Http2Server }> {
  const server = createH2Server();
  server.on("stream", (stream) => {
    const h: Record<string, string | number> = { ":status": status };
    for (let i = 0; i < headers.length; i += 2) h[headers[i]!] = headers[i + 1]!;
    stream.respond(h, { endStream: true });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  h2Servers.add(server);
  return { port: (server.address() as AddressInfo).port, server };
}
