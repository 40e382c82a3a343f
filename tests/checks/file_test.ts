import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import file from "../../checks/file.ts";
import { checkContext } from "./_helpers.ts";

/** Runs `fn` with a fresh temp dir holding `present` (a file) and no `absent`. */
async function withFiles(fn: (present: string, absent: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "file-check-"));
  try {
    const present = join(dir, "service.pid");
    await writeFile(present, "123\n");
    await fn(present, join(dir, "missing.pid"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

Deno.test("file check is healthy when the file exists", async () => {
  await withFiles(async (present) => {
    const result = await file.run(file.config.parse({ path: present }), checkContext());
    assert.deepEqual([result.healthy, result.message], [true, `File ${present} exists`]);
  });
});

Deno.test("file check is unhealthy when the file is missing", async () => {
  await withFiles(async (_present, absent) => {
    const result = await file.run(file.config.parse({ path: absent }), checkContext());
    assert.deepEqual([result.healthy, result.message], [false, `File ${absent} does not exist`]);
  });
});

Deno.test("file check with must_exist false is healthy only while the file is absent", async () => {
  await withFiles(async (present, absent) => {
    const whenAbsent = await file.run(
      file.config.parse({ path: absent, must_exist: false }),
      checkContext(),
    );
    assert.equal(whenAbsent.healthy, true);
    assert.equal(whenAbsent.message, `File ${absent} does not exist (expected absent)`);
    const whenPresent = await file.run(
      file.config.parse({ path: present, must_exist: false }),
      checkContext(),
    );
    assert.equal(whenPresent.healthy, false);
    assert.equal(whenPresent.message, `File ${present} exists (expected absent)`);
  });
});

Deno.test("file check treats a path below a regular file as absent", async () => {
  await withFiles(async (present) => {
    const result = await file.run(
      file.config.parse({ path: join(present, "x") }),
      checkContext(),
    );
    assert.equal(result.healthy, false);
    assert.match(result.message, /does not exist$/);
  });
});

Deno.test("file config applies must_exist true and rejects unknown keys", () => {
  assert.deepEqual(file.config.parse({ path: "/x" }), { path: "/x", must_exist: true });
  assert.equal(file.config.safeParse({ path: "/x", exists: true }).success, false);
  assert.equal(file.config.safeParse({ path: "" }).success, false);
  assert.equal(file.config.safeParse({}).success, false);
});
