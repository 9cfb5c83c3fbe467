import assert from "node:assert/strict";
import { dbDigest, fileDigest, MISSING, treeDigest } from "./digest.ts";
import { tempDir } from "./temp.ts";

Deno.test("fileDigest() is the SHA-256 of the bytes, with distinct values for missing and directories", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/abc`, "abc");
  assert.equal(
    await fileDigest(`${dir.path}/abc`),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(await fileDigest(`${dir.path}/nope`), MISSING);
  assert.equal(await fileDigest(dir.path), "directory");
  await Deno.writeTextFile(`${dir.path}/empty`, "");
  assert.notEqual(await fileDigest(`${dir.path}/empty`), MISSING, "empty differs from missing");
});

Deno.test("dbDigest() and treeDigest() notice a new -wal, changed bytes and changed modes", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(dir.db, "db");
  const db = await dbDigest(dir.db);
  assert.deepEqual({ wal: db.wal, shm: db.shm }, { wal: MISSING, shm: MISSING });
  const tree = await treeDigest(dir.path);
  await Deno.writeTextFile(`${dir.db}-wal`, "");
  assert.notDeepEqual(await dbDigest(dir.db), db);
  assert.notDeepEqual(await treeDigest(dir.path), tree);
  await Deno.remove(`${dir.db}-wal`);
  assert.deepEqual(await treeDigest(dir.path), tree);
  await Deno.chmod(dir.db, 0o644);
  const chmodded = await treeDigest(dir.path);
  await Deno.chmod(dir.db, 0o600);
  assert.notDeepEqual(chmodded, await treeDigest(dir.path));
  await Deno.mkdir(`${dir.path}/sub`);
  await Deno.writeTextFile(`${dir.path}/sub/x`, "x");
  assert.deepEqual(Object.keys(await treeDigest(dir.path)), ["queue.db", "sub", "sub/x"]);
});
