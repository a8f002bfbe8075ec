// A small gRPC mesh for the end-to-end gRPC tests (grpc.test.ts, grpc-routes.test.ts): a control
// plane, two @grpc/grpc-js "catalog" instances (v1, v2) behind their own sidecars, and a client
// sidecar whose --upstream ports reach catalog and a Service with no endpoints ("nowhere"). Started
// on first use by a file's tests and stopped after the file; per-test resources are applied with
// applyFor and deleted when the test ends.

import type { TestContext } from "node:test";
import { echoClient, startGrpcApp, unary, type EchoClient, type GrpcApp } from "./grpc-apps.ts";
import {
  apply,
  httpGet,
  startApp,
  startControlPlane,
  startProxy,
  waitUntil,
  type ControlPlaneProcess,
  type ProxyProcess,
} from "./mesh.ts";
import { weft } from "./processes.ts";

/** Every call through the mesh has a deadline, so a broken path fails the test instead of hanging it. */
export const DEADLINE_MS = 10_000;

export interface Mesh {
  cp: ControlPlaneProcess;
  v1: GrpcApp;
  v2: GrpcApp;
  client: ProxyProcess;
  catalog: EchoClient;
  /** The client sidecar's --upstream port for catalog. */
  catalogPort: number;
  nowhere: EchoClient;
}

/** The file's mesh, started by its first caller; `stop` ends it (in the file's `after`). */
export function grpcMesh(): { mesh(): Promise<Mesh>; stop(): Promise<void> } {
  let started: Promise<Mesh> | undefined;
  return {
    mesh: () => (started ??= startMesh()),
    stop: async () => {
      if (started) await (await started.catch(() => undefined))?.cp.stop();
    },
  };
}

async function startMesh(): Promise<Mesh> {
  const cp = await startControlPlane();
  await apply(
    cp,
    `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: catalog }
spec: { ports: [{ port: 9090, protocol: grpc }] }
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: catalog-v1 }
spec: { selector: { weft.dev/service: catalog, version: v1 } }
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: catalog-v2 }
spec: { selector: { weft.dev/service: catalog, version: v2 } }
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: nowhere }
spec: { ports: [{ port: 9090, protocol: grpc }] }
`,
  );
  const [v1, v2, web] = await Promise.all([
    startGrpcApp("catalog-v1"),
    startGrpcApp("catalog-v2"),
    startApp("web"),
  ]);
  await Promise.all([
    startProxy(cp, "catalog", v1.port, ["--label", "version=v1"]),
    startProxy(cp, "catalog", v2.port, ["--label", "version=v2"]),
  ]);
  const client = await startProxy(cp, "web", web.port, [
    "--upstream",
    "catalog=0",
    "--upstream",
    "nowhere=0",
  ]);
  const portOf = (svc: string) =>
    Number(client.output().match(new RegExp(`upstream ${svc}=127\\.0\\.0\\.1:(\\d+)`))?.[1]);
  const m: Mesh = {
    cp,
    v1,
    v2,
    client,
    catalog: echoClient(`127.0.0.1:${portOf("catalog")}`),
    catalogPort: portOf("catalog"),
    nowhere: echoClient(`127.0.0.1:${portOf("nowhere")}`),
  };
  // Both instances answer before any test counts on them.
  const seen = new Set<string>();
  await waitUntil(
    async () => {
      const r = await unary(m.catalog, { text: "warm-up" }, { deadlineMs: 2000 });
      if (r.value?.app) seen.add(r.value.app);
      return seen.size === 2;
    },
    5000,
    "both catalog instances answering through the mesh",
  );
  return m;
}

export async function metrics(m: Mesh): Promise<string> {
  return (await httpGet(m.client.adminPort, "/metrics")).body;
}

/** Applies `yaml` for one test and deletes what it applied afterwards. */
export async function applyFor(
  t: TestContext,
  m: Mesh,
  yaml: string,
  resources: [string, string][],
): Promise<void> {
  await apply(m.cp, yaml);
  t.after(async () => {
    for (const [kind, name] of resources) await weft(["delete", kind, name], m.cp.env);
  });
}

/** The mesh, with a GRPCRoute "pin" sending every call to `app` for the duration of test `t`. */
export async function pinned(t: TestContext, m: Mesh, app: string): Promise<Mesh> {
  await applyFor(
    t,
    m,
    `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: pin }
spec:
  parentRefs: [{ kind: Service, name: catalog }]
  rules: [{ backendRefs: [{ name: ${app} }] }]
`,
    [["grpcroute", "pin"]],
  );
  let hits = 0;
  await waitUntil(
    async () => {
      hits =
        (await unary(m.catalog, { text: "pin?" }, { deadlineMs: 2000 })).value?.app === app ? hits + 1 : 0;
      return hits >= 5;
    },
    DEADLINE_MS,
    `every call going to ${app}`,
  );
  return m;
}
