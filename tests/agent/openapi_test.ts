/**
 * `docs/agent.openapi.json` tells the truth: it lists exactly the agent's routes (its route
 * table), every `$ref` resolves, only `/healthz` is open, and answers of a real agent (in this
 * process, over real HTTP) validate against the schemas it names.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { API_ROUTES, startAgent } from "../../core/agent/server.ts";
import { ROOT } from "../_cli.ts";
import { Sandbox } from "../e2e/_registry.ts";

// deno-lint-ignore no-explicit-any
const doc: any = JSON.parse(readFileSync(join(ROOT, "docs", "agent.openapi.json"), "utf8"));

Deno.test("the OpenAPI file lists exactly the route table, and only /healthz is open", () => {
  assert.equal(doc.openapi, "3.1.0");
  const listed = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.keys(ops as object).map((m) => `${m.toUpperCase()} ${path}`)
  ).sort();
  assert.deepEqual(listed, API_ROUTES.map(([m, p]) => `${m} ${p}`).sort());
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops as Record<string, { security?: unknown[] }>)) {
      const open = Array.isArray(op.security) && op.security.length === 0;
      assert.equal(open, path === "/healthz", `${method} ${path}: open ${open}`);
    }
  }
});

Deno.test("every $ref of the OpenAPI file resolves", () => {
  const refs: string[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (v && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) k === "$ref" ? refs.push(String(x)) : walk(x);
    }
  };
  walk(doc);
  assert.ok(refs.length > 20);
  for (const ref of refs) {
    const target = ref.replace(/^#\//, "").split("/").reduce((o, k) => o?.[k], doc);
    assert.ok(target, `${ref} does not resolve`);
  }
});

Deno.test("a real agent's answers validate against the schemas the file names", async () => {
  await using sb = await Sandbox.create([{ name: "db" }, { name: "web", deps: ["db"] }]);
  const agent = await startAgent({
    config: sb.config,
    home: sb.home,
    env: sb.env,
    listen: "127.0.0.1:0",
    tokenFile: join(sb.home, "agent", "token"),
  });
  try {
    const token = new URL(agent.signInUrl).hash.slice("#token=".length);
    const ajv = new Ajv2020({ strict: false });
    for (const [name, schema] of Object.entries(doc.components.schemas)) {
      ajv.addSchema(schema as object, `#/components/schemas/${name}`);
    }
    const check = async (path: string, init: RequestInit, status: number, schema: string) => {
      const res = await fetch(`${agent.url}${path}`, {
        ...init,
        headers: { Authorization: `Bearer ${token}`, ...init.headers },
      });
      assert.equal(res.status, status, path);
      const body = await res.json();
      const validate = ajv.getSchema(`#/components/schemas/${schema}`)!;
      assert.ok(validate(body), `${path}: ${JSON.stringify(validate.errors)}`);
      return body;
    };
    await check("/v1/agent", {}, 200, "AgentInfo");
    const list = await fetch(`${agent.url}/v1/services`, {
      headers: { Authorization: `Bearer ${token}` },
    }).then((r) => r.json());
    const entry = ajv.getSchema("#/components/schemas/ListEntry")!;
    for (const row of list) assert.ok(entry(row), JSON.stringify(entry.errors));
    await check("/v1/services/nope", {}, 404, "Error");
    await check("/v1/services/web/start", { method: "POST", body: "{" }, 400, "Error");
    await check("/v1/services/db/start", { method: "POST", body: "{}" }, 200, "LifecycleResult");
    await check("/v1/services/web/start", { method: "POST", body: "{}" }, 200, "LifecycleResult");
    await check("/v1/services/db/stop", { method: "POST", body: "{}" }, 409, "Error");
    await check("/v1/platform/stop", { method: "POST", body: "{}" }, 200, "LifecycleResult");
  } finally {
    await agent.close();
  }
});
