/**
 * `config/services.schema.json`: in step with the zod schema and the bundled plugins, and the
 * bundled and example registries valid against it (checked with ajv, as an editor would).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv, type ErrorObject } from "ajv";
import { parse } from "smol-toml";
import { caseless, SCHEMA_FILE, schemaText } from "../../scripts/gen_schema.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const REGISTRIES = ["config/services.toml", "examples/platform/services.toml"];
const VALID_FIXTURES = join(ROOT, "tests/fixtures/registries/valid");

const schema = JSON.parse(readFileSync(SCHEMA_FILE.toString(), "utf8"));
const ajv = new Ajv({ allErrors: true });
ajv.addFormat("uri", { type: "string", validate: (s: string) => URL.canParse(s) });
const validate = ajv.compile(schema);

/** ajv's errors as `path: message` lines (empty when valid). */
function errors(data: unknown): string[] {
  return validate(data)
    ? []
    : (validate.errors ?? []).map((e: ErrorObject) => `${e.instancePath || "/"}: ${e.message}`);
}

Deno.test("the bundled schema file is what scripts/gen_schema.ts generates", async () => {
  const text = await schemaText();
  assert.ok(
    readFileSync(SCHEMA_FILE.toString(), "utf8") === text,
    "config/services.schema.json is out of date: run deno run -A scripts/gen_schema.ts",
  );
});

for (const file of REGISTRIES) {
  Deno.test(`${file} names the schema on its first line and is valid against it`, () => {
    const text = readFileSync(join(ROOT, file), "utf8");
    const first = text.split("\n")[0];
    const m = /^#:schema (.+)$/.exec(first);
    assert.ok(m, `first line should be "#:schema <path>", got ${JSON.stringify(first)}`);
    assert.equal(resolve(dirname(join(ROOT, file)), m[1]), SCHEMA_FILE.toString());
    assert.deepEqual(errors(parse(text)), []);
  });
}

for (const file of readdirSync(VALID_FIXTURES).filter((f) => f.endsWith(".toml")).sort()) {
  Deno.test(`valid/${file} is valid against the schema`, () => {
    assert.deepEqual(errors(parse(readFileSync(join(VALID_FIXTURES, file), "utf8"))), []);
  });
}

const deployment = (mode: string, table = "") =>
  parse(`[services.a.deployment]\nmode = "${mode}"\n${table}`);

Deno.test("the schema knows every bundled plugin's table, shipped plugins included", () => {
  assert.deepEqual(
    errors(deployment(
      "shell",
      '[services.a.deployment.shell]\nstart = "a"\nstop = "b"\nstatus = "c"\n',
    )),
    [],
  );
  const dns = parse(`[services.a.deployment]
mode = "remote"
[services.a.deployment.remote]
endpoint = "http://127.0.0.1:1"
[services.a.health_check]
type = "dns"
[services.a.health_check.dns]
name = "example.test"
port = 5353
`);
  assert.deepEqual(errors(dns), []);
});

Deno.test("the schema rejects an unknown mode, a missing mode table, unknown keys and bad types", () => {
  assert.ok(errors(deployment("docker-swarm")).some((e) => e.includes("allowed values")));
  assert.ok(errors(deployment("shell")).some((e) => e.includes("required property 'shell'")));
  assert.ok(
    errors(deployment("binary", '[services.a.deployment.binary]\nbinary_pth = "x"\n'))
      .some((e) => e.includes("additional properties")),
  );
  assert.notDeepEqual(
    errors(parse(
      '[services.a]\ndependencies = "db"\n[services.a.deployment]\nmode = "binary"\n' +
        '[services.a.deployment.binary]\nbinary_path = "x"\n',
    )),
    [],
  );
  assert.notDeepEqual(errors(parse('[services."Bad Name".deployment]\nmode = "binary"\n')), []);
});

Deno.test("values holding ${VAR} pass patterns and formats, as the loader expands them first", () => {
  const doc = parse(`[services.a.deployment]
mode = "remote"
[services.a.deployment.remote]
endpoint = "\${REMOTE_URL}"
`);
  assert.deepEqual(errors(doc), []);
  const bad = parse(`[services.a.deployment]
mode = "remote"
[services.a.deployment.remote]
endpoint = "not a url"
`);
  assert.notDeepEqual(errors(bad), []);
});

Deno.test("case-insensitive zod patterns become patterns that accept either case", () => {
  assert.equal(caseless("^\\d+(kb|MiB)?[a-f0-9_]$"), "^\\d+([kK][bB]|[Mm][iI][Bb])?[a-fA-F0-9_]$");
  const re = new RegExp(caseless("^\\s*\\d+\\s*(kib|mb)?$"));
  for (const ok of ["10", "1 KiB", "5MB", "5mb"]) assert.ok(re.test(ok), ok);
  assert.equal(re.test("5 GB"), false);
});
