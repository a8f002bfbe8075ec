import { test } from "node:test";
import assert from "node:assert/strict";
import { validateManifests } from "./validate.ts";
import { formatViolation } from "./violation.ts";

const HEAD = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{kind: Service, name: reviews}]
  rules:
`;
const lines = (rules: string) =>
  validateManifests(HEAD + rules, "route.yaml").violations.map(formatViolation);

test("every filter type is accepted with its settings; the Gateway API's CRD defaults are filled in", () => {
  const { resources, violations } = validateManifests(
    `${HEAD}  - matches:
    - path: {type: PathPrefix, value: /api}
    - headers: [{name: x-beta, value: "1"}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: X-Env, value: prod}]
        add: [{name: Via, value: weft}]
        remove: [X-Debug]
    - type: ResponseHeaderModifier
      responseHeaderModifier: {remove: [server]}
    - type: URLRewrite
      urlRewrite:
        hostname: reviews.internal
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}
    - type: RequestMirror
      requestMirror: {backendRef: {name: shadow, port: 9080}, percent: 10}
    - type: RequestMirror
      requestMirror: {backendRef: {name: audit, namespace: ops}, fraction: {numerator: 1}}
    - type: ExtensionRef
      extensionRef: {group: weft.dev, kind: FaultInjection, name: slow}
    backendRefs: [{name: reviews}]
  - matches: [{path: {type: Exact, value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https, hostname: new.example.com, port: 8443, path: {type: ReplaceFullPath, replaceFullPath: /new}}
`,
    "route.yaml",
  );
  assert.deepEqual(violations, []);
  const rules = (resources[0].spec as { rules: { filters: unknown[] }[] }).rules;
  assert.deepEqual(rules[0].filters, [
    {
      type: "RequestHeaderModifier",
      requestHeaderModifier: {
        set: [{ name: "X-Env", value: "prod" }],
        add: [{ name: "Via", value: "weft" }],
        remove: ["X-Debug"],
      },
    },
    { type: "ResponseHeaderModifier", responseHeaderModifier: { remove: ["server"] } },
    {
      type: "URLRewrite",
      urlRewrite: {
        hostname: "reviews.internal",
        path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/v2" },
      },
    },
    {
      type: "RequestMirror",
      requestMirror: { backendRef: { group: "", kind: "Service", name: "shadow", port: 9080 }, percent: 10 },
    },
    {
      type: "RequestMirror",
      // denominator defaults to 100, as the Gateway API CRD does it
      requestMirror: {
        backendRef: { group: "", kind: "Service", name: "audit", namespace: "ops" },
        fraction: { numerator: 1, denominator: 100 },
      },
    },
    { type: "ExtensionRef", extensionRef: { group: "weft.dev", kind: "FaultInjection", name: "slow" } },
  ]);
  assert.deepEqual(rules[1].filters, [
    {
      type: "RequestRedirect",
      requestRedirect: {
        scheme: "https",
        hostname: "new.example.com",
        path: { type: "ReplaceFullPath", replaceFullPath: "/new" },
        port: 8443,
        statusCode: 302, // the Gateway API default
      },
    },
  ]);
});

test("a filter's type must name the one settings field it carries", () => {
  assert.deepEqual(
    lines(`  - filters:
    - type: RequestHeaderModifier
      responseHeaderModifier: {remove: [a]}
    - type: Rewrite
      urlRewrite: {hostname: a}
    - type: URLRewrite
      urlRewrite: {}
    - type: ExtensionRef
    - {type: CORS, cors: {}}
    - requestMirror: {backendRef: {name: a}}
`),
    [
      'route.yaml:8:7: spec.rules[0].filters[0].requestHeaderModifier: is required when type is "RequestHeaderModifier"',
      'route.yaml:9:7: spec.rules[0].filters[0].responseHeaderModifier: must not be set when type is "RequestHeaderModifier" (responseHeaderModifier goes with type "ResponseHeaderModifier")',
      'route.yaml:10:13: spec.rules[0].filters[1].type: must be one of "RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite", "RequestMirror", "ExtensionRef" (got "Rewrite")',
      "route.yaml:13:19: spec.rules[0].filters[2].urlRewrite: must set hostname, path or both",
      'route.yaml:14:7: spec.rules[0].filters[3].extensionRef: is required when type is "ExtensionRef"',
      'route.yaml:15:14: spec.rules[0].filters[4].type: filter type "CORS" is not supported by weft yet (supported: RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect, URLRewrite, RequestMirror, ExtensionRef)',
      'route.yaml:15:20: spec.rules[0].filters[4].cors: field "cors" is not supported by weft yet',
      "route.yaml:16:7: spec.rules[0].filters[5].type: is required",
    ],
  );
});

test("one filter per type except RequestMirror; no redirect beside a rewrite or backendRefs", () => {
  assert.deepEqual(
    lines(`  - filters:
    - {type: URLRewrite, urlRewrite: {hostname: a.example}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: m1}}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: m2}}}
    - {type: URLRewrite, urlRewrite: {hostname: b.example}}
    - {type: RequestRedirect, requestRedirect: {scheme: https}}
    - {type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: a}}
    - {type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: b}}
    backendRefs: [{name: reviews}]
`),
    [
      "route.yaml:11:14: spec.rules[0].filters[3].type: only one URLRewrite filter is allowed per rule (also spec.rules[0].filters[0])",
      "route.yaml:12:14: spec.rules[0].filters[4].type: RequestRedirect and URLRewrite cannot be used in the same rule: a redirect answers the request, so nothing is forwarded to rewrite (the other is spec.rules[0].filters[0])",
      "route.yaml:12:14: spec.rules[0].filters[4].type: a RequestRedirect filter answers the request itself, so the rule must not have backendRefs (remove one or the other)",
      "route.yaml:14:14: spec.rules[0].filters[6].type: only one ExtensionRef filter is allowed per rule (also spec.rules[0].filters[5])",
    ],
  );
  // Empty backendRefs are no backends: a redirect is fine there.
  assert.deepEqual(
    lines(`  - filters: [{type: RequestRedirect, requestRedirect: {}}]\n    backendRefs: []\n`),
    [],
  );
});

test("ReplacePrefixMatch needs PathPrefix matches; a match without a path counts as PathPrefix /", () => {
  assert.deepEqual(
    lines(`  - matches:
    - path: {value: /a}
    - path: {type: RegularExpression, value: "^/b"}
    filters:
    - type: URLRewrite
      urlRewrite:
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /c, replaceFullPath: /d}
`),
    [
      'route.yaml:13:22: spec.rules[0].filters[0].urlRewrite.path.type: ReplacePrefixMatch needs every match of the rule to have a PathPrefix path (spec.rules[0].matches[1].path.type is "RegularExpression")',
      'route.yaml:13:66: spec.rules[0].filters[0].urlRewrite.path.replaceFullPath: must not be set when type is "ReplacePrefixMatch"',
    ],
  );
  assert.deepEqual(
    lines(`  - matches: [{headers: [{name: x, value: "1"}]}, {path: {value: /p}}]
    filters:
    - {type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}
  - filters:
    - {type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}}
`),
    [],
  );
  assert.deepEqual(
    lines(`  - matches: [{path: {type: Exact, value: /x}}]
    filters:
    - {type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /y}}}
`),
    [
      'route.yaml:9:62: spec.rules[0].filters[0].requestRedirect.path.type: ReplacePrefixMatch needs every match of the rule to have a PathPrefix path (spec.rules[0].matches[0].path.type is "Exact")',
    ],
  );
});

test("redirects, mirrors and extension references are checked field by field", () => {
  assert.deepEqual(
    lines(`  - matches: [{path: {type: Exact, value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {statusCode: 304, path: {type: ReplaceFullPath, replaceFullPath: new}, hostname: "*.example.com"}
  - filters:
    - {type: RequestMirror, requestMirror: {backendRef: {name: m, weight: 5}, percent: 101}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: m}, percent: 5, fraction: {numerator: 1}}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: m}, fraction: {numerator: 3, denominator: 2}}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: m}, fraction: {numerator: 0, denominator: 0}}}
    - {type: RequestMirror, requestMirror: {percent: 5}}
    - {type: ExtensionRef, extensionRef: {group: networking.istio.io, kind: EnvoyFilter, name: Slow}}
`),
    [
      "route.yaml:10:37: spec.rules[0].filters[0].requestRedirect.statusCode: must be one of 301, 302, 303, 307, 308 (got 304)",
      "route.yaml:10:89: spec.rules[0].filters[0].requestRedirect.path.replaceFullPath: must start with '/' (got \"new\")",
      'route.yaml:10:105: spec.rules[0].filters[0].requestRedirect.hostname: must be a host name without a wildcard (got "*.example.com")',
      'route.yaml:12:67: spec.rules[1].filters[0].requestMirror.backendRef.weight: unknown field "weight" (known fields: group, kind, name, namespace, port)',
      "route.yaml:12:88: spec.rules[1].filters[0].requestMirror.percent: must be an integer between 0 and 100 (got 101)",
      "route.yaml:13:80: spec.rules[1].filters[1].requestMirror.fraction: set percent or fraction, not both",
      "route.yaml:14:90: spec.rules[1].filters[2].requestMirror.fraction.numerator: must not be greater than the denominator (2): a mirror cannot copy more than every request",
      "route.yaml:15:106: spec.rules[1].filters[3].requestMirror.fraction.denominator: must be an integer between 1 and 2147483647 (got 0)",
      "route.yaml:16:29: spec.rules[1].filters[4].requestMirror.backendRef: is required",
      'route.yaml:17:50: spec.rules[1].filters[5].extensionRef.group: must be "weft.dev": weft\'s only extension filter is weft.dev/FaultInjection (apiVersion weft.dev/v1alpha1) (got "networking.istio.io")',
      'route.yaml:17:77: spec.rules[1].filters[5].extensionRef.kind: must be "FaultInjection": weft\'s only extension filter is weft.dev/FaultInjection (apiVersion weft.dev/v1alpha1) (got "EnvoyFilter")',
      'route.yaml:17:96: spec.rules[1].filters[5].extensionRef.name: must be lowercase (a DNS-1123 label) (got "Slow")',
    ],
  );
  // Every documented status code is accepted as written.
  for (const code of [301, 302, 303, 307, 308])
    assert.deepEqual(
      lines(`  - filters: [{type: RequestRedirect, requestRedirect: {statusCode: ${code}}}]\n`),
      [],
    );
});

test("header modifiers: names unique case-insensitively, values safe to put on the wire, never empty", () => {
  assert.deepEqual(
    lines(`  - filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set:
        - {name: X-Env, value: prod}
        - {name: x-env, value: dev}
        - {name: "bad name", value: ""}
        add:
        - {name: x-note, value: "a\\r\\nInjected: yes"}
        remove: [X-Debug, x-debug]
    - type: ResponseHeaderModifier
      responseHeaderModifier: {}
`),
    [
      'route.yaml:12:18: spec.rules[0].filters[0].requestHeaderModifier.set[1].name: duplicate header "x-env" (also spec.rules[0].filters[0].requestHeaderModifier.set[0]); header names are case-insensitive',
      'route.yaml:13:18: spec.rules[0].filters[0].requestHeaderModifier.set[2].name: must be an HTTP header name (letters, digits and !#$%&\'*+-.^_`|~) (got "bad name")',
      'route.yaml:13:37: spec.rules[0].filters[0].requestHeaderModifier.set[2].value: must not be empty (got "")',
      'route.yaml:15:33: spec.rules[0].filters[0].requestHeaderModifier.add[0].value: must not contain CR, LF or NUL characters (got "a\\r\\nInjected: yes")',
      'route.yaml:16:27: spec.rules[0].filters[0].requestHeaderModifier.remove[1]: duplicate "x-debug" (also spec.rules[0].filters[0].requestHeaderModifier.remove[0])',
      "route.yaml:18:31: spec.rules[0].filters[1].responseHeaderModifier: must set at least one of set, add, remove",
    ],
  );
});

test("the Gateway API's list limits apply to filters and header modifiers", () => {
  const n = (count: number, item: (i: number) => string) =>
    `[${Array.from({ length: count }, (_, i) => item(i)).join(", ")}]`;
  const mirrors = n(17, (i) => `{type: RequestMirror, requestMirror: {backendRef: {name: m${i}}}}`);
  const headers = n(17, (i) => `{name: h${i}, value: v}`);
  const v = validateManifests(
    `${HEAD}  - filters: ${mirrors}\n  - filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: ${headers}}}]\n`,
    "route.yaml",
  ).violations;
  assert.deepEqual(
    v.map((x) => `${x.line} ${x.path}: ${x.message}`),
    [
      "7 spec.rules[0].filters: must have at most 16 items (got 17)",
      "8 spec.rules[1].filters[0].requestHeaderModifier.set: must have at most 16 items (got 17)",
    ],
  );
});

test("header modifiers cannot touch what the proxy frames or manages per hop (Host, Content-Length, ...)", () => {
  assert.deepEqual(
    lines(`  - filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: Content-Length, value: "0"}]
        add: [{name: Transfer-Encoding, value: chunked}]
        remove: [host]
    - type: ResponseHeaderModifier
      responseHeaderModifier: {set: [{name: connection, value: close}], add: [{name: x-ok, value: "1"}]}
`),
    [
      'route.yaml:10:22: spec.rules[0].filters[0].requestHeaderModifier.set[0].name: is managed by the proxy (framing or per hop) and cannot be modified (got "Content-Length")',
      'route.yaml:11:22: spec.rules[0].filters[0].requestHeaderModifier.add[0].name: is managed by the proxy (framing or per hop) and cannot be modified (got "Transfer-Encoding")',
      `route.yaml:12:18: spec.rules[0].filters[0].requestHeaderModifier.remove[0]: is managed by the proxy (framing or per hop) and cannot be modified; use a URLRewrite filter's hostname (got "host")`,
      'route.yaml:14:45: spec.rules[0].filters[1].responseHeaderModifier.set[0].name: is managed by the proxy (framing or per hop) and cannot be modified (got "connection")',
    ],
  );
});
