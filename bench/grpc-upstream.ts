// The gRPC case's upstream: a @grpc/grpc-js server with one unary method, /weft.bench.Echo/Unary,
// whose messages are opaque bytes (no .proto: identity serialisers). Every call is answered OK with
// the same 95-byte message — 100 bytes of DATA with gRPC's 5-byte prefix, as the HTTP cases' bodies.
// Prints "grpc-upstream listening 127.0.0.1:PORT" once it is up, and "grpc-upstream calls N" (calls
// answered OK so far) on SIGUSR2: the harness checks that every 2xx h2load counted was a gRPC OK.
// Usage: node bench/grpc-upstream.ts [PORT]   (0 or none = any free port)

import * as grpc from "@grpc/grpc-js";

export const GRPC_PATH = "/weft.bench.Echo/Unary";
export const GRPC_REPLY = Buffer.from("weft bench grpc reply: ".padEnd(95, "y"));
if (GRPC_REPLY.length !== 95) throw new Error("gRPC reply must be 95 bytes");

const identity = (b: Buffer) => b;
/** The service definition, shared with the harness's client check. */
export const BENCH_SERVICE = {
  Unary: {
    path: GRPC_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
    originalName: "Unary",
  },
} as const satisfies grpc.ServiceDefinition;

/** One unary request message as h2load sends it: the 5-byte gRPC prefix (uncompressed, length), then the bytes. */
export function framedRequest(message: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

if (import.meta.main) {
  let calls = 0;
  const server = new grpc.Server();
  server.addService(BENCH_SERVICE, {
    Unary: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      calls++;
      callback(null, GRPC_REPLY);
    },
  });
  process.on("SIGUSR2", () => console.log(`grpc-upstream calls ${calls}`));
  const address = `127.0.0.1:${Number(process.argv[2] ?? 0)}`;
  server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) {
      console.error(`grpc-upstream: cannot listen on ${address}: ${err.message}`);
      process.exit(1);
    }
    console.log(`grpc-upstream listening 127.0.0.1:${port}`);
  });
  const stop = () => server.tryShutdown(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
