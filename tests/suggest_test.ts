import assert from "node:assert/strict";
import { closest, didYouMean, editDistance } from "../lib/suggest.ts";

Deno.test("editDistance() counts edits, a swap of neighbours as one", () => {
  assert.equal(editDistance("", ""), 0);
  assert.equal(editDistance("abc", "abc"), 0);
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(editDistance("enqueue", "enqeuue"), 1);
  assert.equal(editDistance("status", "stauts"), 1);
  assert.equal(editDistance("list", "lsit"), 1);
  assert.equal(editDistance("ab", "ba"), 1);
});

Deno.test("closest() suggests commands, flags, fields and keys users mistype", () => {
  const commands = ["enqueue", "list", "status", "show", "config", "dlq"];
  assert.equal(closest("enqeue", commands), "enqueue");
  assert.equal(closest("stauts", commands), "status");
  assert.equal(closest("lst", commands), "list");
  assert.equal(closest("Status", commands), "status");
  assert.equal(closest("dql", commands), "dlq");
  assert.equal(closest("enq", commands), "enqueue"); // a prefix
  assert.equal(closest("--priorty", ["--priority", "--delay"]), "--priority");
  assert.equal(closest("comand", ["command", "id", "cwd"]), "command");
  assert.equal(closest("backof-max", ["backoff-base", "backoff-max"]), "backoff-max");
});

Deno.test("closest() says nothing when nothing is close", () => {
  assert.equal(closest("frobnicate", ["enqueue", "list", "status"]), undefined);
  assert.equal(closest("x", []), undefined);
  assert.equal(closest("zz", ["enqueue"]), undefined);
  assert.equal(didYouMean("frobnicate", ["list"]), "");
  assert.equal(didYouMean("lsit", ["list"]), 'did you mean "list"?');
});

Deno.test("closest() ranks a known alias above a near spelling", () => {
  const fields = ["command", "id", "priority", "max_retries", "timeout", "run_at", "cwd", "env"];
  const aliases = {
    cmd: "command",
    exec: "command",
    retries: "max_retries",
    max_attempts: "max_retries",
    when: "run_at",
    dir: "cwd",
    environment: "env",
  };
  // "cmd" is one edit from "cwd", but it means "command".
  assert.equal(closest("cmd", fields), "cwd");
  assert.equal(closest("cmd", fields, aliases), "command");
  assert.equal(closest("CMD", fields, aliases), "command");
  assert.equal(closest("max-attempts", fields, aliases), "max_retries");
  assert.equal(closest("maxAttempts", fields, aliases), "max_retries");
  assert.equal(closest("dir", fields, aliases), "cwd");
  assert.equal(closest("environment", fields, aliases), "env");
  // Without an alias, edit distance still decides.
  assert.equal(closest("prority", fields, aliases), "priority");
  assert.equal(didYouMean("exec", fields, aliases), 'did you mean "command"?');
});
