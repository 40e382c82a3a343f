import assert from "node:assert/strict";
import { editDistance, suggest } from "../../core/suggest.ts";

Deno.test("suggest() proposes the registry key a typo was meant to be", () => {
  const keys = ["name", "type", "category", "health_check", "startup", "deployment"];
  assert.equal(suggest("helth_check", keys), "health_check");
  assert.equal(suggest("Startup", keys), "startup");
  assert.equal(suggest("deploymnet", keys), "deployment");
  assert.equal(suggest("orchestartor", ["orchestrator", "gitea"]), "orchestrator");
});

Deno.test("suggest() stays quiet when nothing is close", () => {
  assert.equal(suggest("postgres", ["orchestrator", "gitea", "coredns"]), undefined);
  assert.equal(suggest("x", ["a", "b"]), undefined);
  assert.equal(suggest("", ["a"]), undefined);
  assert.equal(suggest("anything", []), undefined);
});

Deno.test("suggest() prefers the closest candidate, then the earlier one", () => {
  assert.equal(suggest("gitee", ["gite", "gitea"]), "gite");
  assert.equal(suggest("abcd", ["abce", "abcf"]), "abce");
  assert.equal(suggest("api", ["apx", "api"]), "api");
});

Deno.test("editDistance() counts edits, with a swap of neighbours as one", () => {
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(editDistance("ab", "ba"), 1);
  assert.equal(editDistance("same", "same"), 0);
  assert.equal(editDistance("kitten", "sitting", 1), 2, "stops early past the bound");
});
