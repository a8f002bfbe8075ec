import { test } from "node:test";
import assert from "node:assert/strict";
import { validateManifests } from "./validate.ts";
import { formatViolation } from "./violation.ts";

const HEAD = "apiVersion: weft.dev/v1alpha1\nkind: Service\n";
const lines = (text: string) => validateManifests(text, "svc.yaml").violations.map(formatViolation);

test("a Service with ports gets protocol http by default", () => {
  const text = `${HEAD}metadata: {name: reviews, namespace: shop}
spec:
  ports:
  - name: web
    port: 9080
  - name: grpc
    port: 9090
    protocol: grpc
`;
  const { resources, violations } = validateManifests(text, "svc.yaml");
  assert.deepEqual(violations, []);
  assert.deepEqual(resources[0], {
    apiVersion: "weft.dev/v1alpha1",
    kind: "Service",
    metadata: { name: "reviews", namespace: "shop" },
    spec: {
      ports: [
        { name: "web", port: 9080, protocol: "http" },
        { name: "grpc", port: 9090, protocol: "grpc" },
      ],
    },
  });
});

test("a subset Service selects workloads by label; a Service may omit spec", () => {
  const text = `${HEAD}metadata: {name: reviews-v2}\nspec:\n  selector:\n    weft.dev/service: reviews\n    version: v2\n`;
  const { resources, violations } = validateManifests(
    `${text}---\n${HEAD}metadata: {name: bare}\n`,
    "svc.yaml",
  );
  assert.deepEqual(violations, []);
  assert.deepEqual(resources[0].spec, { selector: { "weft.dev/service": "reviews", version: "v2" } });
  assert.deepEqual(resources[1].spec, {});
});

test("ports must be unique by number and by name, with valid fields", () => {
  const text = `${HEAD}metadata: {name: reviews}
spec:
  ports:
  - {name: web, port: 9080}
  - {name: web, port: 9080, protocol: HTTP2}
  - {name: Admin_Port, port: 0}
  - port:
  -
  - {name: other, port: 9081, appProtocol: h2c}
`;
  assert.deepEqual(lines(text), [
    'svc.yaml:7:12: spec.ports[1].name: duplicate port name "web" (also spec.ports[0])',
    "svc.yaml:7:23: spec.ports[1].port: duplicate port 9080 (also spec.ports[0])",
    'svc.yaml:7:39: spec.ports[1].protocol: must be one of "http", "http2", "grpc", "tcp" (got "HTTP2"); did you mean "http2"?',
    `svc.yaml:8:12: spec.ports[2].name: must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit (got "Admin_Port")`,
    "svc.yaml:8:30: spec.ports[2].port: must be an integer between 1 and 65535 (got 0)",
    "svc.yaml:9:5: spec.ports[3].port: is required",
    "svc.yaml:10:4: spec.ports[4]: must not be empty",
    'svc.yaml:11:31: spec.ports[5].appProtocol: unknown field "appProtocol"; did you mean "protocol"?',
  ]);
});

test("selectors must be non-empty and use label syntax", () => {
  assert.deepEqual(lines(`${HEAD}metadata: {name: a}\nspec:\n  selector: {}\n`), [
    "svc.yaml:5:13: spec.selector: must not be empty: an empty selector would match every workload; omit it to select this service's own workloads (weft.dev/service: <name>)",
  ]);
  assert.deepEqual(
    lines(`${HEAD}metadata: {name: a}\nspec:\n  selector:\n    version: 2\n    "bad key": x\n`),
    [
      "svc.yaml:6:14: spec.selector.version: must be a string (got number 2; quote it to make it text)",
      "svc.yaml:7:5: spec.selector[\"bad key\"]: invalid key \"bad key\": name part must be letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
    ],
  );
  assert.deepEqual(lines(`${HEAD}metadata: {name: a}\nspec:\n  ports: {port: 80}\n`), [
    "svc.yaml:5:10: spec.ports: must be a list (got a mapping)",
  ]);
});
