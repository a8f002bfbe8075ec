// One-off HTTP/2 and gRPC requests for the HTTP/2 cases' checks: one h2c request with prior
// knowledge (node:http2, which keeps trailers) and one unary call with @grpc/grpc-js, each on a
// fresh connection with a timeout, so a case proves its path before it is measured.

import * as grpc from "@grpc/grpc-js";
import { connect, type IncomingHttpHeaders } from "node:http2";
import { BENCH_SERVICE } from "../grpc-upstream.ts";
import { sleep } from "./proc.ts";

export interface H2Result {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** GET `url` over h2c with prior knowledge, `:authority` set to `authority` if given; 2 s timeout. */
export function h2Get(url: string, authority?: string): Promise<H2Result> {
  return new Promise((resolve, reject) => {
    const session = connect(url);
    const fail = (err: Error) => {
      session.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`h2c GET ${url}: timed out`)), 2000);
    session.on("error", fail);
    const u = new URL(url);
    const stream = session.request({
      ":path": u.pathname,
      ...(authority ? { ":authority": authority } : {}),
    });
    stream.on("error", fail);
    const chunks: Buffer[] = [];
    let headers: IncomingHttpHeaders = {};
    stream.on("response", (h) => (headers = h));
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      clearTimeout(timer);
      session.close();
      resolve({ status: Number(headers[":status"] ?? 0), headers, body: Buffer.concat(chunks) });
    });
    stream.end();
  });
}

/**
 * Retries an h2c GET for up to `timeoutMs` until it answers 200 with exactly `body`; resolves with the
 * response (its headers tell which protocol the app was reached in).
 */
export async function expectH2Body(
  url: string,
  authority: string | undefined,
  body: Buffer,
  timeoutMs: number,
): Promise<H2Result> {
  const start = performance.now();
  let last: string;
  while (true) {
    try {
      const res = await h2Get(url, authority);
      if (res.status === 200 && res.body.equals(body)) return res;
      last = `HTTP ${res.status}, body ${JSON.stringify(res.body.toString("utf8").slice(0, 200))}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (performance.now() - start > timeoutMs) break;
    await sleep(100);
  }
  throw new Error(
    `h2c GET ${url} (:authority ${authority ?? "-"}) did not return the upstream's body: ${last}`,
  );
}

const BenchClient = grpc.makeGenericClientConstructor(BENCH_SERVICE, "Echo");

/** One unary call to `target` (host:port), `authority` as :authority; resolves with the reply. */
export function grpcUnary(target: string, authority: string | undefined, message: Buffer): Promise<Buffer> {
  const client = new BenchClient(target, grpc.credentials.createInsecure(), {
    ...(authority ? { "grpc.default_authority": authority } : {}),
  });
  return new Promise<Buffer>((resolve, reject) => {
    client.Unary(
      message,
      { deadline: Date.now() + 2000 },
      (err: grpc.ServiceError | null, reply?: Buffer) => {
        if (err) reject(new Error(`gRPC ${grpc.status[err.code]} (${err.code}): ${err.details}`));
        else resolve(reply!);
      },
    );
  }).finally(() => client.close());
}

/** Retries a unary call for up to `timeoutMs` until it returns OK with exactly `reply`. */
export async function expectGrpcReply(
  target: string,
  authority: string | undefined,
  message: Buffer,
  reply: Buffer,
  timeoutMs: number,
): Promise<void> {
  const start = performance.now();
  let last: string;
  while (true) {
    try {
      const got = await grpcUnary(target, authority, message);
      if (got.equals(reply)) return;
      last = `OK with another reply: ${JSON.stringify(got.toString("utf8").slice(0, 200))}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (performance.now() - start > timeoutMs) break;
    await sleep(100);
  }
  throw new Error(
    `gRPC ${target} (:authority ${authority ?? "-"}) did not return the upstream's reply: ${last}`,
  );
}
