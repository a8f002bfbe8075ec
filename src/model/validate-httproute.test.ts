import { test } from "node:test";
import assert from "node:assert/strict";
import { validateManifests } from "./validate.ts";
import { formatViolation } from "./violation.ts";

const HEAD = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n";
const lines = (text: string) => validateManifests(text, "route.yaml").violations.map(formatViolation);

test("a weighted split with path-prefix matches is valid, with defaults filled", () => {
  const text = `${HEAD}metadata:
  name: reviews.canary
  namespace: shop
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: reviews
    port: 9080
  hostnames: [reviews.shop.svc.cluster.local]
  rules:
  - name: api
    matches:
    - path: {type: PathPrefix, value: /api}
      headers:
      - {name: x-canary, value: "true"}
      - {type: RegularExpression, name: x-user, value: "^(alice|bob)$"}
      queryParams: [{name: debug, value: "1"}]
      method: GET
    - path: {value: /v2}
    backendRefs:
    - {name: reviews-v1, port: 9080, weight: 90}
    - {kind: Service, group: core, name: reviews-v2, weight: 10}
  - backendRefs:
    - name: reviews-v1
`;
  const { resources, violations } = validateManifests(text, "route.yaml");
  assert.deepEqual(violations, []);
  assert.deepEqual(resources[0], {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    metadata: { name: "reviews.canary", namespace: "shop" },
    spec: {
      parentRefs: [{ group: "", kind: "Service", name: "reviews", port: 9080 }],
      hostnames: ["reviews.shop.svc.cluster.local"],
      rules: [
        {
          name: "api",
          matches: [
            {
              path: { type: "PathPrefix", value: "/api" },
              headers: [
                { type: "Exact", name: "x-canary", value: "true" },
                { type: "RegularExpression", name: "x-user", value: "^(alice|bob)$" },
              ],
              queryParams: [{ type: "Exact", name: "debug", value: "1" }],
              method: "GET",
            },
            { path: { type: "PathPrefix", value: "/v2" } },
          ],
          backendRefs: [
            { group: "", kind: "Service", name: "reviews-v1", port: 9080, weight: 90 },
            { group: "", kind: "Service", name: "reviews-v2", weight: 10 },
          ],
        },
        { backendRefs: [{ group: "", kind: "Service", name: "reviews-v1", weight: 1 }] },
      ],
    },
  });
});

test("path defaults follow the Gateway API: type PathPrefix, value /", () => {
  const text = `${HEAD}metadata: {name: r}\nspec:\n  parentRefs: [{kind: Service, name: a}]\n  rules:\n  - matches: [{path: {}}, {}]\n`;
  const { resources, violations } = validateManifests(text, "route.yaml");
  assert.deepEqual(violations, []);
  assert.deepEqual(resources[0].spec, {
    parentRefs: [{ group: "", kind: "Service", name: "a" }],
    rules: [{ matches: [{ path: { type: "PathPrefix", value: "/" } }, {}] }],
  });
});

test("parentRefs must name a Service", () => {
  const text = `${HEAD}metadata: {name: r}
spec:
  parentRefs:
  - name: reviews
  - {kind: Gateway, group: gateway.networking.k8s.io, name: edge, sectionName: http}
  - {kind: Service, name: reviews}
  - {kind: Service, name: reviews, namespace: default}
  - {kind: Service, name: Reviews, port: 0}
`;
  assert.deepEqual(lines(text), [
    "route.yaml:6:5: spec.parentRefs[0].kind: is required: set kind: Service (weft attaches routes to Services; the Gateway API default, Gateway, is not supported)",
    'route.yaml:7:12: spec.parentRefs[1].kind: must be "Service": weft routes to Services, not to other kinds (got "Gateway")',
    'route.yaml:7:28: spec.parentRefs[1].group: must be "" (the core group, where Service lives) (got "gateway.networking.k8s.io")',
    "route.yaml:9:5: spec.parentRefs[3]: duplicate parentRef (also spec.parentRefs[2])",
    'route.yaml:10:27: spec.parentRefs[4].name: must be lowercase (a DNS-1123 label) (got "Reviews")',
    "route.yaml:10:42: spec.parentRefs[4].port: must be an integer between 1 and 65535 (got 0)",
  ]);
  assert.deepEqual(lines(`${HEAD}metadata: {name: r}\nspec:\n  parentRefs: []\n`), [
    "route.yaml:5:15: spec.parentRefs: must have at least 1 item",
  ]);
  assert.deepEqual(lines(`${HEAD}metadata: {name: r}\nspec:\n  rules: []\n`), [
    "route.yaml:4:1: spec.parentRefs: is required",
  ]);
});

test("match values are checked by type: literal paths, regular expressions, headers, methods", () => {
  const text = `${HEAD}metadata: {name: r}
spec:
  parentRefs: [{kind: Service, name: a}]
  rules:
  - matches:
    - path: {type: PathPrefix, value: api}
    - path: {type: Exact, value: /a//b}
    - path: {type: RegularExpression, value: "/(unclosed"}
    - path: {type: Prefix, value: "^/x"}
      method: get
    - headers:
      - {name: X-User, value: a}
      - {name: x-user, value: b}
      - {name: "bad name", value: c, type: RegularExpression}
      - {name: x-re, value: "[", type: RegularExpression}
      - {name: x-none}
  -
`;
  assert.deepEqual(lines(text), [
    "route.yaml:8:39: spec.rules[0].matches[0].path.value: must start with '/' (got \"api\")",
    'route.yaml:9:34: spec.rules[0].matches[1].path.value: must not contain "//" (got "/a//b")',
    'route.yaml:10:46: spec.rules[0].matches[2].path.value: must be a valid regular expression: Unterminated group (got "/(unclosed")',
    'route.yaml:11:20: spec.rules[0].matches[3].path.type: must be one of "PathPrefix", "Exact", "RegularExpression" (got "Prefix")',
    'route.yaml:12:15: spec.rules[0].matches[3].method: must be one of "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH" (got "get"); did you mean "GET"?',
    'route.yaml:15:16: spec.rules[0].matches[4].headers[1].name: duplicate header "x-user" (also spec.rules[0].matches[4].headers[0]); header names are case-insensitive',
    'route.yaml:16:16: spec.rules[0].matches[4].headers[2].name: must be an HTTP header name (letters, digits and !#$%&\'*+-.^_`|~) (got "bad name")',
    'route.yaml:17:29: spec.rules[0].matches[4].headers[3].value: must be a valid regular expression: Unterminated character class (got "[")',
    "route.yaml:18:9: spec.rules[0].matches[4].headers[4].value: is required",
    "route.yaml:19:4: spec.rules[1]: must not be empty",
  ]);
});

test("backendRefs: Service kind, integer weights in range, unsupported rule fields", () => {
  const text = `${HEAD}metadata: {name: r}
spec:
  parentRefs: [{kind: Service, name: a}]
  rules:
  - name: split
    sessionPersistence: {sessionName: s}
    backendRefs:
    - {name: a-v1, weight: 1.5}
    - {name: a-v2, weight: 1000001}
    - {name: a-v3, kind: ServiceImport}
    - {weight: 1}
  - name: split
`;
  assert.deepEqual(lines(text), [
    'route.yaml:8:5: spec.rules[0].sessionPersistence: field "sessionPersistence" is not supported by weft yet',
    "route.yaml:10:28: spec.rules[0].backendRefs[0].weight: must be an integer between 0 and 1000000 (got 1.5)",
    "route.yaml:11:28: spec.rules[0].backendRefs[1].weight: must be an integer between 0 and 1000000 (got 1000001)",
    'route.yaml:12:26: spec.rules[0].backendRefs[2].kind: must be "Service": weft routes to Services, not to other kinds (got "ServiceImport")',
    "route.yaml:13:7: spec.rules[0].backendRefs[3].name: is required",
    "route.yaml:14:11: spec.rules[1].name: duplicate rule name (also spec.rules[0])",
  ]);
});

test("Gateway API limits on list sizes are enforced", () => {
  const n = (count: number, item: (i: number) => string) =>
    `[${Array.from({ length: count }, (_, i) => item(i)).join(", ")}]`;
  const text = `${HEAD}metadata: {name: r}
spec:
  parentRefs: ${n(17, (i) => `{kind: Service, name: s${i}}`)}
  rules:
  - matches: ${n(9, (i) => `{path: {value: /p${i}}}`)}
    backendRefs: ${n(17, (i) => `{name: b${i}}`)}
  - matches:
    - headers: ${n(17, (i) => `{name: h${i}, value: v}`)}
`;
  assert.deepEqual(
    validateManifests(text, "route.yaml").violations.map((v) => `${v.line} ${v.path}: ${v.message}`),
    [
      "5 spec.parentRefs: must have at most 16 items (got 17)",
      "7 spec.rules[0].matches: must have at most 8 items (got 9)",
      "8 spec.rules[0].backendRefs: must have at most 16 items (got 17)",
      "10 spec.rules[1].matches[0].headers: must have at most 16 items (got 17)",
    ],
  );
  const rules = `${HEAD}metadata: {name: r}\nspec:\n  parentRefs: [{kind: Service, name: a}]\n  rules: ${n(17, () => "{}")}\n`;
  assert.deepEqual(lines(rules), ["route.yaml:6:10: spec.rules: must have at most 16 items (got 17)"]);
});

test("hostnames are host names, optionally wildcarded", () => {
  const text = `${HEAD}metadata: {name: r}\nspec:\n  parentRefs: [{kind: Service, name: a}]\n  hostnames: ["*.example.com", 10.0.0.1, Upper.example]\n`;
  assert.deepEqual(lines(text), [
    'route.yaml:6:32: spec.hostnames[1]: must be a host name, not an IP address (got "10.0.0.1")',
    "route.yaml:6:42: spec.hostnames[2]: must be a lowercase host name, optionally starting with '*.' (got \"Upper.example\")",
  ]);
});

test("backendRefs[].filters: header modifiers are stored; other filter types are not supported there yet", () => {
  const { resources, violations } = validateManifests(
    `${HEAD}metadata: {name: r}
spec:
  parentRefs: [{kind: Service, name: reviews}]
  rules:
    - backendRefs:
        - name: reviews-v2
          filters:
            - type: RequestHeaderModifier
              requestHeaderModifier: {set: [{name: X-Version, value: v2}]}
            - type: ResponseHeaderModifier
              responseHeaderModifier: {remove: [Server]}
`,
    "route.yaml",
  );
  assert.deepEqual(violations.map(formatViolation), []);
  const spec = resources[0].spec as { rules: { backendRefs: unknown[] }[] };
  assert.deepEqual(spec.rules[0].backendRefs[0], {
    group: "",
    kind: "Service",
    name: "reviews-v2",
    weight: 1,
    filters: [
      { type: "RequestHeaderModifier", requestHeaderModifier: { set: [{ name: "X-Version", value: "v2" }] } },
      { type: "ResponseHeaderModifier", responseHeaderModifier: { remove: ["Server"] } },
    ],
  });
  assert.deepEqual(
    lines(`${HEAD}metadata: {name: r}
spec:
  parentRefs: [{kind: Service, name: reviews}]
  rules:
    - backendRefs:
        - name: a
          filters:
            - {type: RequestMirror, requestMirror: {backendRef: {name: b}}}
            - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: Host, value: evil}]}}
            - {type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: x-a, value: "a\\r\\nx-b: b"}]}}
            - {type: CORS}
        - {name: c, filters: "none"}
`),
    [
      'route.yaml:10:22: spec.rules[0].backendRefs[0].filters[0].type: filter type "RequestMirror" in a backendRef is not supported by weft yet (supported here: RequestHeaderModifier, ResponseHeaderModifier; a rule\'s own filters support every type)',
      'route.yaml:11:82: spec.rules[0].backendRefs[0].filters[1].requestHeaderModifier.set[0].name: is managed by the proxy (framing or per hop) and cannot be modified; use a URLRewrite filter\'s hostname (got "Host")',
      "route.yaml:12:22: spec.rules[0].backendRefs[0].filters[2].type: only one RequestHeaderModifier filter is allowed per rule (also spec.rules[0].backendRefs[0].filters[1])",
      'route.yaml:12:94: spec.rules[0].backendRefs[0].filters[2].requestHeaderModifier.add[0].value: must not contain CR, LF or NUL characters (got "a\\r\\nx-b: b")',
      'route.yaml:13:22: spec.rules[0].backendRefs[0].filters[3].type: filter type "CORS" is not supported by weft yet (supported: RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect, URLRewrite, RequestMirror, ExtensionRef)',
      'route.yaml:14:30: spec.rules[0].backendRefs[1].filters: must be a list (got "none")',
    ],
  );
});
