// TCP services and multi-port Services (issue 7 §2) through real sidecar processes and mTLS:
// redis-cli → client sidecar (--upstream cache=…) → mTLS tunnel → server sidecar → redis-server; a
// server-speaks-first greeting; half-close; a large transfer both ways with both sidecars' memory
// bounded; a refusing endpoint skipped and ejected; a two-port Service reached on both ports.
// WEFT_TCP_TRANSFER_MIB sets the transfer size each way (default 128; the 1 GiB: 1024).

import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import net from "node:net";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { metricSum } from "../helpers/control-app.ts";
import {
  apply,
  httpGet,
  startApp,
  startControlPlane,
  startProxy,
  waitUntil,
  type ControlPlaneProcess,
  type ProxyProcess,
} from "../helpers/mesh.ts";

const run = promisify(execFile);
const MIB = 1024 * 1024;
const TRANSFER = Number(process.env.WEFT_TCP_TRANSFER_MIB ?? 128) * MIB;

let cp: ControlPlaneProcess;
let admin: Awaited<ReturnType<typeof startApp>>;
let client: ProxyProcess;
const servers: ProxyProcess[] = [];
const upstream: Record<string, number> = {};
const closers: (() => void)[] = [];

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, "127.0.0.1");
  await once(s, "listening");
  const port = (s.address() as net.AddressInfo).port;
  s.close();
  await once(s, "close");
  return port;
}

async function tcpApp(onConnection: (s: net.Socket) => void): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on("error", () => s.destroy());
    onConnection(s);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  closers.push(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

/** Deterministic bytes: chunk i is filled with (i % 251). */
function chunkOf(i: number, size: number): Buffer {
  return Buffer.alloc(size, i % 251);
}

/**
 * The "blob" app: "up\n" → hashes what follows until the client's FIN (half-close), then answers
 * "<sha256> <bytes>\n"; "down N\n" → sends N deterministic bytes, then ends.
 */
function blobApp(s: net.Socket): void {
  let head = Buffer.alloc(0);
  const onHead = (d: Buffer) => {
    head = Buffer.concat([head, d]);
    const nl = head.indexOf(10);
    if (nl < 0) return;
    s.off("data", onHead);
    const cmd = head.subarray(0, nl).toString();
    const rest = head.subarray(nl + 1);
    if (cmd === "up") {
      const h = createHash("sha256");
      let n = 0;
      const take = (c: Buffer) => {
        h.update(c);
        n += c.length;
      };
      take(rest);
      s.on("data", take);
      s.on("end", () => s.end(`${h.digest("hex")} ${n}\n`));
    } else {
      let left = Number(cmd.split(" ")[1]);
      let i = 0;
      const pump = () => {
        while (left > 0) {
          const c = chunkOf(i++, Math.min(MIB, left));
          left -= c.length;
          if (!s.write(c)) return void s.once("drain", pump);
        }
        s.end();
      };
      pump();
    }
  };
  s.on("data", onHead);
}

function vm(pid: number, field: "VmRSS" | "VmHWM"): number {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  return Number(m?.[1]) * 1024;
}

function connect(port: number): Promise<net.Socket> {
  const s = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
  return once(s, "connect").then(() => s);
}

async function redisCli(...args: string[]): Promise<string> {
  const { stdout } = await run("redis-cli", ["-h", "127.0.0.1", "-p", String(upstream.cache), ...args]);
  return stdout.trim();
}

before(async () => {
  const redisPort = await freePort();
  const redis = spawn(
    "redis-server",
    ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: "ignore" },
  );
  closers.push(() => redis.kill());
  const refusing = await freePort();
  const greeter = await tcpApp((s) => {
    s.write("220 greeter ready\r\n");
    s.on("data", (d) => s.end(`250 got ${d.toString().trim()}\r\n`));
  });
  const blob = await tcpApp(blobApp);
  const echo = await tcpApp((s) => s.pipe(s));
  const web = await startApp("multi-http");
  admin = await startApp("multi-admin");
  cp = await startControlPlane();
  await apply(
    cp,
    `
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: cache }
spec: { ports: [{ name: redis, port: 6379, protocol: tcp }] }
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: { name: cache-gone }
spec: { service: cache, address: 127.0.0.1, port: ${refusing} }
---
apiVersion: weft.dev/v1alpha1
kind: TrafficPolicy
metadata: { name: cache }
spec:
  targetRef: { kind: Service, name: cache }
  loadBalancer: { type: RoundRobin }
  outlierDetection: { consecutiveFailures: 1, baseEjectionTime: 60s }
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: greeter }
spec: { ports: [{ port: 25, protocol: tcp }] }
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: blob }
spec: { ports: [{ port: 9000, protocol: tcp }] }
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: multi }
spec:
  ports:
    - { name: http, port: 80, protocol: http }
    - { name: admin, port: 8081, protocol: http }
    - { name: echo, port: 7000, protocol: tcp }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: multi-admin }
spec:
  parentRefs: [{ kind: Service, name: multi, sectionName: admin }]
  rules:
    - matches: [{ path: { type: PathPrefix, value: /status } }]
      backendRefs: [{ name: multi }]
`,
  );
  await waitUntil(
    () =>
      new Promise<boolean>((r) =>
        net
          .connect(redisPort, "127.0.0.1")
          .on("connect", () => r(true))
          .on("error", () => r(false)),
      ),
    5_000,
    "redis-server listening",
  );
  // One at a time: four proxies minting tokens and certificates at once overload a shared CI core.
  for (const [svc, port, extra] of [
    ["cache", redisPort, []],
    ["greeter", greeter, []],
    ["blob", blob, []],
    ["multi", web.port, ["--app-port", `echo=${echo}`, "--app-port", `8081=${admin.port}`]],
  ] as const)
    servers.push(await startProxy(cp, svc, port, [...extra]));
  const self = await startApp("tcp-client");
  client = await startProxy(cp, "client", self.port, [
    "--upstream",
    "cache=0",
    "--upstream",
    "greeter=0",
    "--upstream",
    "blob=0",
    "--upstream",
    "multi:7000=0",
    "--upstream",
    "multi:8081=0",
  ]);
  for (const m of client.output().matchAll(/upstream (\S+)=127\.0\.0\.1:(\d+)/g))
    upstream[m[1]] = Number(m[2]);
  await waitUntil(async () => (await redisCli("PING")) === "PONG", 10_000, "redis through the mesh");
});

after(async () => {
  for (const c of closers) c();
  await Promise.all([client, ...servers].map((p) => p?.stop()));
  await cp?.stop();
});

test("redis-cli through a tcp Service port across two sidecars (mTLS): PING, SET, GET", async () => {
  assert.equal(await redisCli("PING"), "PONG");
  assert.equal(await redisCli("SET", "weft:key", "hello mesh"), "OK");
  assert.equal(await redisCli("GET", "weft:key"), "hello mesh");
  const m = (await httpGet(client.adminPort, "/metrics")).body;
  const labels = {
    direction: "outbound",
    source_service: "client.default",
    destination_service: "cache.default",
  };
  assert.ok(metricSum(m, "weft_tcp_connections_opened_total", labels) >= 3);
  assert.ok(metricSum(m, "weft_tcp_received_bytes_total", labels) > 0);
  assert.ok(metricSum(m, "weft_tcp_sent_bytes_total", labels) > 0);
  const server = (await httpGet(servers[0].adminPort, "/metrics")).body;
  assert.ok(
    metricSum(server, "weft_tcp_connections_opened_total", {
      direction: "inbound",
      source_service: "client.default",
      destination_service: "cache.default",
    }) >= 3,
    "the server sidecar counts the tunnels from the client's verified identity",
  );
});

test("a refusing endpoint: connections go to the next one at once, and it is ejected", async () => {
  for (let i = 0; i < 6; i++) assert.equal(await redisCli("PING"), "PONG");
  const m = (await httpGet(client.adminPort, "/metrics")).body;
  assert.ok(metricSum(m, "weft_upstream_connect_failures_total", { reason: "tcp_tunnel" }) >= 1);
  assert.ok(metricSum(m, "weft_outlier_ejections_total", { destination_service: "cache.default" }) >= 1);
});

test("server speaks first: the greeting arrives before the client sends a byte", async () => {
  const s = await connect(upstream.greeter);
  const [greeting] = (await once(s, "data")) as [Buffer];
  assert.equal(greeting.toString(), "220 greeter ready\r\n");
  s.write("HELO weft\r\n");
  const [reply] = (await once(s, "data")) as [Buffer];
  assert.equal(reply.toString(), "250 got HELO weft\r\n");
  s.destroy();
});

test("half-close: the client ends its side and still gets the answer", async () => {
  const s = await connect(upstream.blob);
  const body = Buffer.from("half-closed but still listening");
  s.end(Buffer.concat([Buffer.from("up\n"), body]));
  const chunks: Buffer[] = [];
  s.on("data", (d) => chunks.push(d));
  await once(s, "end");
  const expected = createHash("sha256").update(body).digest("hex");
  assert.equal(Buffer.concat(chunks).toString(), `${expected} ${body.length}\n`);
  s.destroy();
});

test(`a ${TRANSFER / MIB} MiB transfer each way: sha256 equal, both sidecars' RSS bounded`, async () => {
  const pids = [client.proc.pid as number, servers[2].proc.pid as number];
  const baseline = pids.map((p) => vm(p, "VmRSS"));
  const started = performance.now();
  // Upload: client → blob, hashed by the app after the client's FIN.
  const up = await connect(upstream.blob);
  const sent = createHash("sha256");
  const answer: Buffer[] = [];
  up.on("data", (d) => answer.push(d));
  up.write("up\n");
  for (let i = 0, left = TRANSFER; left > 0; i++) {
    const c = chunkOf(i, Math.min(MIB, left));
    left -= c.length;
    sent.update(c);
    if (!up.write(c)) await once(up, "drain");
  }
  up.end();
  await once(up, "end");
  assert.equal(Buffer.concat(answer).toString(), `${sent.digest("hex")} ${TRANSFER}\n`);
  // Download: blob → client.
  const down = await connect(upstream.blob);
  down.write(`down ${TRANSFER}\n`);
  const got = createHash("sha256");
  let n = 0;
  down.on("data", (d: Buffer) => {
    got.update(d);
    n += d.length;
  });
  await once(down, "end");
  const want = createHash("sha256");
  for (let i = 0, left = TRANSFER; left > 0; i++) {
    const c = chunkOf(i, Math.min(MIB, left));
    left -= c.length;
    want.update(c);
  }
  assert.equal(n, TRANSFER);
  assert.equal(got.digest("hex"), want.digest("hex"));
  const seconds = (performance.now() - started) / 1000;
  const growth = pids.map((p, i) => vm(p, "VmHWM") - baseline[i]);
  process.stderr.write(
    `# tcp transfer: ${(2 * TRANSFER) / MIB} MiB in ${seconds.toFixed(1)} s (${((2 * TRANSFER) / MIB / seconds).toFixed(0)} MiB/s); ` +
      `peak RSS growth client ${(growth[0] / MIB).toFixed(1)} MiB, server ${(growth[1] / MIB).toFixed(1)} MiB\n`,
  );
  for (const g of growth) assert.ok(g < 100 * MIB, `RSS grew by ${(g / MIB).toFixed(1)} MiB`);
  up.destroy();
  down.destroy();
});

test("a three-port Service: HTTP on 80 and 8081 (each to its own app port), TCP on 7000", async () => {
  const r = await httpGet(client.outboundPort, "http://multi/hello");
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).app, "multi-http");
  const a = await httpGet(client.outboundPort, "http://multi:8081/status");
  assert.equal(a.status, 200, a.body);
  assert.equal(JSON.parse(a.body).app, "multi-admin");
  assert.equal(
    admin.seen.at(-1)?.headers["x-weft-dst-port"],
    undefined,
    "the app never sees the port header",
  );
  // The route attached with sectionName: admin limits port 8081 only.
  const miss = await httpGet(client.outboundPort, "http://multi:8081/other");
  assert.equal(miss.status, 404);
  assert.equal(miss.headers["x-weft-error"], "no_route");
  assert.equal((await httpGet(client.outboundPort, "http://multi/other")).status, 200);
  // An app cannot pick the port by sending the header itself.
  const forged = await httpGet(client.outboundPort, "http://multi/status", { "x-weft-dst-port": "8081" });
  assert.equal(JSON.parse(forged.body).app, "multi-http");
  // An Upgrade to port 8081 goes to that port's app too (its dedicated connection carries the port);
  // this app answers upgrades as plain requests, which pass through as an ordinary response.
  const up = await httpGet(client.outboundPort, "http://multi:8081/status", {
    connection: "upgrade",
    upgrade: "x-test",
  });
  assert.equal(up.status, 200, up.body);
  assert.equal(JSON.parse(up.body).app, "multi-admin");
  assert.equal(up.headers.connection, "close");
  // An --upstream port for the HTTP port 8081: handed to HTTP, and the port travels too.
  const viaUpstream = await httpGet(upstream["multi:8081"], "/status");
  assert.equal(JSON.parse(viaUpstream.body).app, "multi-admin");
  const s = await connect(upstream["multi:7000"]);
  s.write("echo over the tcp port");
  const [d] = (await once(s, "data")) as [Buffer];
  assert.equal(d.toString(), "echo over the tcp port");
  s.destroy();
});
