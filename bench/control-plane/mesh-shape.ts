// The mesh a run simulates at N proxies (issue 8's "Bars"): S = N/2 Services, two proxies each; every
// proxy calls the next three services (its own index + 1, + 2, + 3, wrapping), which is also its
// `--reach` list when the run scopes by reach. The changes measured are made on service 0: an
// HTTPRoute that sets a header carrying a fresh marker, and a static Workload on a fresh port.

/** on-demand: the default of `weft proxy`; full: `--reach '*'`; reach: `--reach` its 3 services. */
export type Scoping = "on-demand" | "full" | "reach";

export const CALLS_PER_PROXY = 3;
export const NAMESPACE = "default";
/** The port of the static Workloads that join during a run: distinct from the proxies' fake ports. */
export const JOIN_PORT_BASE = 60_000;

export const serviceName = (i: number): string => `svc-${String(i).padStart(4, "0")}`;

export function serviceCount(proxies: number): number {
  return Math.max(1, Math.floor(proxies / 2));
}

/** The services proxy `index` calls (names without the namespace, as `--reach` takes them). */
export function callsOf(index: number, services: number): string[] {
  const own = Math.floor(index / 2) % services;
  const out = new Set<string>();
  for (let k = 1; k <= CALLS_PER_PROXY && out.size < services - 1; k++)
    out.add(serviceName((own + k) % services));
  return [...out];
}

export function serviceOf(index: number, services: number): string {
  return serviceName(Math.floor(index / 2) % services);
}

/** Every Service of the mesh, as one multi-document YAML for `weft apply -f`. */
export function servicesYaml(services: number): string {
  const docs: string[] = [];
  for (let i = 0; i < services; i++)
    docs.push(`apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: ${serviceName(i)} }
spec:
  ports:
    - { port: 80, protocol: http }
`);
  return docs.join("---\n");
}

/** An HTTPRoute on `service` whose one rule sets `x-weft-sim: marker` and sends to the service itself. */
export function routeYaml(service: string, marker: string): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ${service}-sim }
spec:
  parentRefs:
    - { kind: Service, name: ${service}, port: 80 }
  rules:
    - filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set:
              - { name: x-weft-sim, value: "${marker}" }
      backendRefs:
        - { name: ${service}, port: 80 }
`;
}

/** A static Workload (no sidecar) joining `service` at 127.0.0.1:`port`. */
export function workloadYaml(service: string, name: string, port: number): string {
  return `apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: { name: ${name}, labels: {} }
spec: { service: ${service}, address: 127.0.0.1, port: ${port} }
`;
}
