// Instance lifecycle under steady load (issue 6, hole 3): real processes — a control plane, a client
// sidecar, and server instances under `weft run` with a small app (test/fixtures/lifecycle-app.js) —
// and a bounded load loop through the client sidecar that counts every failed request.
//
//   scale up            a new instance (its app slow to listen) joins:             0 failures
//   rolling update      new instance up, old one SIGTERMed; default app:           0 failures
//   rolling update      the same with an app that finishes in-flight requests:     0 failures
//   drain               POST /drain on one instance (its app is stopped too):      0 failures
//   SIGKILL of a sidecar                            failures ≤ requests in flight at that moment
//   SIGSTOP of a sidecar                            failures ≤ requests in flight at that moment
//
// The last two also print how long until traffic avoided the instance. Assertions are on counts,
// never on timing; the drain delay in these tests (1.5 s) only has to outlast one push.

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { connect, createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { before, test } from "node:test";
import {
  httpGet,
  startApp,
  startControlPlane,
  startProxy,
  waitUntil,
  type ControlPlaneProcess,
  type ProxyProcess,
} from "../helpers/mesh.ts";
import { ROOT, spawnWeft, type Spawned } from "../helpers/processes.ts";

const APP = join(ROOT, "test", "fixtures", "lifecycle-app.js");
/** Concurrent requests of the load loop: the most that can be in flight at any moment. */
const CONCURRENCY = 8;
const RATE = 150; // requests per second, at most
const DRAIN_DELAY_MS = 1500;

let cp: ControlPlaneProcess;
let client: ProxyProcess;

before(async () => {
  cp = await startControlPlane();
  const callerApp = await startApp("caller");
  // The whole mesh up front: the scenarios watch a service's endpoints in the caller's config before
  // it calls that service (on demand, it would have no config for it yet).
  client = await startProxy(cp, "caller", callerApp.port, ["--reach", "*"]);
});

// ---------------------------------------------------------------------------------------------
// Instances

interface Instance {
  run: Spawned;
  name: string;
  /** The app, once it listens. */
  app: Promise<{ pid: number; port: number; admin: string }>;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

async function startInstance(
  service: string,
  name: string,
  env: Record<string, string> = {},
  extra: string[] = [],
): Promise<Instance> {
  const port = await freePort();
  const run = spawnWeft(
    [
      "run",
      "--service",
      service,
      "--port",
      String(port),
      "--inbound-port",
      "0",
      "--outbound-port",
      "0",
      "--admin-port",
      "0",
      "--drain-delay",
      String(DRAIN_DELAY_MS),
      ...extra,
      "--",
      process.execPath,
      APP,
    ],
    { ...cp.env, NAME: name, ...env },
  );
  const app = run
    .waitFor(new RegExp(`lifecycle-app (\\{"name":"${name}".*\\})`), 20_000)
    .then((m) => JSON.parse(m[1]) as { pid: number; port: number; admin: string });
  app.catch(() => {});
  return { run, name, app };
}

/** The workloads the client sidecar currently sends `service`'s traffic to. */
async function endpointsOf(service: string): Promise<string[]> {
  const snap = JSON.parse((await httpGet(client.adminPort, "/config")).body);
  return (snap.clusters?.[`${service}.default`]?.endpoints ?? []).map(
    (e: { workload: string }) => e.workload,
  );
}

async function waitForEndpoints(service: string, n: number, what: string, withinMs = 20_000): Promise<void> {
  await waitUntil(async () => (await endpointsOf(service)).length === n, withinMs, what);
}

/** The exit of `weft run`, or a clear failure if it does not come (it used to leave its app running). */
async function exitOf(i: Instance, why: string): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), 20_000)));
  const outcome = await Promise.race([i.run.exited, late]);
  clearTimeout(timer);
  if (outcome === "late") assert.fail(`weft run (${i.name}) did not exit within 20 s of ${why}`);
  return outcome.code;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat[stat.lastIndexOf(")") + 2] !== "Z";
  } catch {
    return false;
  }
}

/**
 * POST /drain on an instance's admin port, with the admin token when the proxy wrote one (the
 * admin port may require it: `<data dir>/proxy-admin-<port>.token`).
 */
async function postDrain(admin: string): Promise<number> {
  const port = Number(new URL(admin).port);
  const tokenFile = join(cp.dataDir, `proxy-admin-${port}.token`);
  const headers: Record<string, string> = existsSync(tokenFile)
    ? { authorization: `Bearer ${readFileSync(tokenFile, "utf8").trim()}` }
    : {};
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method: "POST", path: "/drain", headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------
// Load

interface Failure {
  at: number;
  what: string;
}

/** CONCURRENCY workers sending GET http://<service>/ through the client sidecar, at most RATE/s. */
class Load {
  readonly byApp = new Map<string, number>();
  readonly failures: Failure[] = [];
  sent = 0;
  inFlight = 0;
  #stopped = false;
  readonly #workers: Promise<void>[] = [];
  readonly #agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  readonly #service: string;

  constructor(service: string) {
    this.#service = service;
    for (let i = 0; i < CONCURRENCY; i++) this.#workers.push(this.#work());
  }

  get ok(): number {
    return [...this.byApp.values()].reduce((a, b) => a + b, 0);
  }

  /** Resolves once `name` has answered `n` more requests. */
  async served(name: string, n: number): Promise<void> {
    const target = (this.byApp.get(name) ?? 0) + n;
    await waitUntil(() => (this.byApp.get(name) ?? 0) >= target, 20_000, `${n} requests served by ${name}`);
  }

  /** Resolves once `n` more requests have completed (answered or failed). */
  async completed(n: number): Promise<void> {
    const target = this.ok + this.failures.length + n;
    await waitUntil(() => this.ok + this.failures.length >= target, 20_000, `${n} more requests`);
  }

  async stop(): Promise<string> {
    this.#stopped = true;
    await Promise.all(this.#workers);
    this.#agent.destroy();
    const apps = [...this.byApp].map(([k, v]) => `${k}=${v}`).join(" ");
    return `${this.sent} requests, ${this.failures.length} failed; answered by ${apps}`;
  }

  async #work(): Promise<void> {
    const spacing = (1000 * CONCURRENCY) / RATE;
    while (!this.#stopped) {
      const started = Date.now();
      await this.#one();
      const wait = spacing - (Date.now() - started);
      // Pacing the load generator itself (not waiting for a condition): bounded request rate.
      if (wait > 0 && !this.#stopped) await new Promise((r) => setTimeout(r, wait));
    }
  }

  #one(): Promise<void> {
    this.sent++;
    this.inFlight++;
    return new Promise<void>((resolve) => {
      const done = (failure?: string, app?: string) => {
        this.inFlight--;
        if (failure !== undefined) this.failures.push({ at: Date.now(), what: failure });
        else if (app !== undefined) this.byApp.set(app, (this.byApp.get(app) ?? 0) + 1);
        resolve();
      };
      const req = request(
        {
          host: "127.0.0.1",
          port: client.outboundPort,
          path: `http://${this.#service}/`,
          agent: this.#agent,
        },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (d) => (body += d));
          res.on("end", () =>
            res.statusCode === 200
              ? done(undefined, body)
              : done(`${res.statusCode} ${res.headers["x-weft-error"] ?? ""} ${body.slice(0, 120)}`),
          );
          res.on("error", (e) => done(`response: ${e.message}`));
        },
      );
      req.setTimeout(5_000, () => req.destroy(new Error("no answer within 5 s")));
      req.on("error", (e) => done(`request: ${e.message}`));
      req.end();
    });
  }
}

function describe(failures: Failure[], since: number): string {
  return failures
    .slice(0, 10)
    .map((f) => `  +${f.at - since} ms: ${f.what}`)
    .join("\n");
}

// ---------------------------------------------------------------------------------------------
// Scenarios

test("scale up: an instance whose app is slow to listen joins with zero failed requests", async (t) => {
  const svc = "scaleup";
  const a = await startInstance(svc, "a");
  await waitForEndpoints(svc, 1, "the first instance to serve");
  const load = new Load(svc);
  t.after(() => load.stop());
  await load.served("a", 50);
  const started = Date.now();
  // Its sidecar is ready long before the app listens: it must not be an endpoint until then.
  const b = await startInstance(svc, "b", { START_DELAY_MS: "1000" });
  await b.app;
  await load.served("b", 100);
  const summary = await load.stop();
  t.diagnostic(summary);
  assert.equal(load.failures.length, 0, `failed requests:\n${describe(load.failures, started)}`);
  await Promise.all([a.run.stop(), b.run.stop()]);
});

for (const graceful of [false, true]) {
  test(`rolling update (${graceful ? "an app that finishes in-flight requests" : "an app that exits at once on SIGTERM"}): zero failed requests`, async (t) => {
    const svc = graceful ? "rolling-graceful" : "rolling-default";
    const env: Record<string, string> = graceful ? { GRACEFUL: "1" } : {};
    const v1 = await startInstance(svc, "v1", env);
    const v1App = await v1.app;
    await waitForEndpoints(svc, 1, "v1 to serve");
    const load = new Load(svc);
    t.after(() => load.stop());
    await load.served("v1", 50);
    const started = Date.now();
    const v2 = await startInstance(svc, "v2", env);
    await load.served("v2", 50);
    // Retire v1 as an orchestrator would: SIGTERM to `weft run`.
    v1.run.proc.kill("SIGTERM");
    const code = await exitOf(v1, "SIGTERM");
    assert.equal(code, graceful ? 0 : 128 + 15, "weft run exits with its app's status");
    assert.equal(alive(v1App.pid), false, "the app is gone");
    await load.served("v2", 100);
    const summary = await load.stop();
    t.diagnostic(summary);
    assert.equal(load.failures.length, 0, `failed requests:\n${describe(load.failures, started)}`);
    assert.match(
      v1.run.output(),
      /draining: left the endpoints/,
      "v1 left the endpoints before anything closed",
    );
    await v2.run.stop();
  });
}

test("drain: POST /drain on a `weft run` instance stops its app too, with zero failed requests", async (t) => {
  const svc = "drained";
  const [a, b] = await Promise.all([startInstance(svc, "a"), startInstance(svc, "b")]);
  const aApp = await a.app;
  await waitForEndpoints(svc, 2, "both instances to serve");
  const load = new Load(svc);
  t.after(() => load.stop());
  await Promise.all([load.served("a", 30), load.served("b", 30)]);
  const started = Date.now();
  assert.equal(await postDrain(aApp.admin), 202);
  const code = await exitOf(a, "POST /drain");
  assert.equal(code, 128 + 15, "weft run stopped its app (SIGTERM) and exits with the app's status");
  assert.equal(alive(aApp.pid), false, "the app did not outlive its sidecar");
  await load.served("b", 100);
  const summary = await load.stop();
  t.diagnostic(summary);
  assert.equal(load.failures.length, 0, `failed requests:\n${describe(load.failures, started)}`);
  assert.deepEqual((await endpointsOf(svc)).length, 1, "the drained instance is no longer an endpoint");
  await b.run.stop();
});

test("drain: `weft proxy` exits 0 after POST /drain", async () => {
  const app = await startApp("standalone");
  const p = await startProxy(cp, "standalone", app.port);
  assert.equal(await postDrain(`http://127.0.0.1:${p.adminPort}`), 202);
  const { code, signal } = await p.exited;
  assert.deepEqual({ code, signal }, { code: 0, signal: null });
});

/**
 * Takes one of two instances out without warning; failures may not exceed what was in flight at
 * that moment (CONCURRENCY at most). Reports when traffic avoided it: the last failure, and the
 * endpoint's removal from the client's config.
 */
async function abrupt(
  t: { diagnostic(msg: string): void; after(fn: () => unknown): void },
  svc: string,
  hit: (victim: Instance) => void,
  how: string,
) {
  const [victim, survivor] = await Promise.all([
    startInstance(svc, "victim"),
    startInstance(svc, "survivor"),
  ]);
  await Promise.all([victim.app, survivor.app]);
  await waitForEndpoints(svc, 2, "both instances to serve");
  const load = new Load(svc);
  t.after(() => load.stop());
  await Promise.all([load.served("victim", 30), load.served("survivor", 30)]);
  const inFlight = load.inFlight;
  const hitAt = Date.now();
  hit(victim);
  await waitForEndpoints(svc, 1, `the ${how} instance to leave the client's endpoints`, 10_000);
  const goneAfter = Date.now() - hitAt;
  // Requests sent to it while frozen time out at 5 s: wait for those, then for fresh traffic.
  await load.completed(CONCURRENCY * 2);
  await load.served("survivor", 100);
  const summary = await load.stop();
  const last = load.failures.at(-1);
  t.diagnostic(
    `${how}: ${summary}; in flight at that moment: ${inFlight}; endpoint removed after ${goneAfter} ms; ` +
      `last failure ${last ? `+${last.at - hitAt} ms` : "none"}`,
  );
  assert.ok(
    load.failures.length <= CONCURRENCY,
    `${load.failures.length} failed requests, more than the ${CONCURRENCY} that can be in flight:\n${describe(load.failures, hitAt)}`,
  );
  await survivor.run.stop();
}

test("SIGKILL of a sidecar: no more failures than requests in flight", async (t) => {
  await abrupt(t, "killed", (v) => v.run.proc.kill("SIGKILL"), "killed");
});

test("SIGSTOP of a sidecar: no more failures than requests in flight", async (t) => {
  let frozen: Instance | undefined;
  t.after(async () => {
    if (!frozen) return;
    frozen.run.proc.kill("SIGCONT");
    await frozen.run.stop("SIGKILL");
  });
  await abrupt(
    t,
    "frozen",
    (v) => {
      frozen = v;
      v.run.proc.kill("SIGSTOP");
    },
    "frozen",
  );
});

test("a sidecar on a fixed inbound port does not accept peers' connections before its first config", async (t) => {
  // A control plane stream that never answers: the proxy gets its certificate, but no snapshot.
  const silent = createServer((s) => s.destroy());
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  t.after(() => silent.close());
  const [inboundPort, appPort] = await Promise.all([freePort(), freePort()]);
  const p = spawnWeft(
    [
      "proxy",
      "--service",
      "early",
      "--port",
      String(appPort),
      "--inbound-port",
      String(inboundPort),
      "--outbound-port",
      "0",
      "--admin-port",
      "0",
      "--stream",
      `https://127.0.0.1:${(silent.address() as AddressInfo).port}`,
    ],
    cp.env,
  );
  t.after(() => p.stop());
  const m = await p.waitFor(/admin 127\.0\.0\.1:(\d+)/);
  const ready = await httpGet(Number(m[1]), "/ready");
  assert.equal(ready.status, 503);
  assert.match(ready.body, /config snapshot/);
  // Callers holding an old registration of this address see a refused connection (retried
  // elsewhere), not a 503 not_ready from a sidecar that cannot route yet.
  const refused = await new Promise<string>((resolve) => {
    const s = connect(inboundPort, "127.0.0.1");
    s.on("connect", () => {
      s.destroy();
      resolve("connected");
    });
    s.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
  assert.equal(refused, "ECONNREFUSED");
});

test("`weft proxy` whose app stops listening leaves the endpoints, and rejoins when it is back", async () => {
  const app = await startApp("flaky");
  const p = await startProxy(cp, "flaky", app.port);
  await waitForEndpoints("flaky", 1, "the instance to serve");
  app.server.closeAllConnections();
  await new Promise((r) => app.server.close(r));
  await waitForEndpoints("flaky", 0, "the instance whose app died to leave the endpoints");
  assert.equal(p.proc.exitCode, null, "the sidecar itself keeps running");
  await new Promise<void>((r) => app.server.listen(app.port, "127.0.0.1", r));
  await waitForEndpoints("flaky", 1, "the instance to rejoin once its app listens again");
});
