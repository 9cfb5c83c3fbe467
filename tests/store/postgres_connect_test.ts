/**
 * The PostgreSQL store's pieces that need no server: what a URL says, where a password comes
 * from, channel names and the debounced notifier.
 *
 * @module
 */

import assert from "node:assert/strict";
import { UsageError } from "../../lib/errors.ts";
import { parseTarget, pgpassPassword } from "../../lib/store/postgres/connect.ts";
import { channelName, Notifier } from "../../lib/store/postgres/listen.ts";
import type { ChangeKind } from "../../lib/store/postgres/listen.ts";
import { detachLogPath, resolveDbLocation } from "../../lib/store/location.ts";
import { poll } from "../helpers/poll.ts";
import { tempDir } from "../helpers/temp.ts";

const noEnv = (_: string) => undefined;

Deno.test("parseTarget() takes the queue's own parameters out of the URL, and the password", () => {
  const t = parseTarget(
    "postgresql://app:p%40ss%3Aw@db.example:6543/jobs?schema=billing&listen=off&sslmode=require",
    noEnv,
  );
  assert.deepEqual(t, {
    url: "postgresql://app@db.example:6543/jobs?sslmode=require",
    display: "postgresql://app@db.example:6543/jobs?schema=billing&listen=off&sslmode=require",
    host: "db.example",
    port: 6543,
    database: "jobs",
    user: "app",
    schema: "billing",
    listen: false,
    password: "p@ss:w",
  });
  const defaults = parseTarget("postgres://127.0.0.1/q", (name) => ({ USER: "me" })[name]);
  assert.deepEqual(
    [defaults.schema, defaults.listen, defaults.port, defaults.user, defaults.password],
    ["queuectl", true, 5432, "me", undefined],
  );
  assert.equal(parseTarget("postgres://[::1]:5433/q", noEnv).host, "::1");
  for (
    const bad of [
      "postgres://h/q?schema=a-b",
      "postgres://h/q?schema=",
      "postgres://h/q?listen=maybe",
    ]
  ) {
    assert.throws(() => parseTarget(bad, noEnv), UsageError, bad);
  }
});

Deno.test("parseTarget() finds the password in the URL, else PGPASSWORD, else the pgpass file", async () => {
  await using dir = await tempDir();
  const pgpass = `${dir.path}/pgpass`;
  Deno.writeTextFileSync(
    pgpass,
    [
      "# comment",
      "other:5432:q:app:not-this-one",
      "db:*:q:app:from\\:pgpass\\\\x",
      "*:*:*:*:fallback",
    ].join("\n") + "\n",
  );
  Deno.chmodSync(pgpass, 0o600);
  const env = (extra: Record<string, string>) => (name: string) =>
    ({ PGPASSFILE: pgpass, ...extra })[name];
  assert.equal(parseTarget("postgres://app:url@db/q", env({ PGPASSWORD: "env" })).password, "url");
  assert.equal(parseTarget("postgres://app@db/q", env({ PGPASSWORD: "env" })).password, "env");
  assert.equal(parseTarget("postgres://app@db/q", env({})).password, "from:pgpass\\x");
  assert.equal(parseTarget("postgres://someone@elsewhere/x", env({})).password, "fallback");
  // A file others may read is ignored, as libpq ignores it.
  Deno.chmodSync(pgpass, 0o644);
  assert.equal(parseTarget("postgres://app@db/q", env({})).password, undefined);
  // A socket directory as the host matches "localhost".
  Deno.writeTextFileSync(pgpass, "localhost:5432:q:app:socket\n");
  Deno.chmodSync(pgpass, 0o600);
  assert.equal(
    pgpassPassword({ host: "/run/postgresql", port: 5432, database: "q", user: "app" }, env({})),
    "socket",
  );
  // No file at all: no password, no error.
  assert.equal(
    pgpassPassword(
      { host: "h", port: 1, database: "d", user: "u" },
      (name) => name === "HOME" ? `${dir.path}/nowhere` : undefined,
    ),
    undefined,
  );
});

Deno.test("resolveDbLocation() takes postgres:// URLs, shows them without the password, and logs detached workers in the data directory", () => {
  const env = (name: string) => ({ HOME: "/home/u" })[name];
  const location = resolveDbLocation("postgres://app:secret@db:6543/jobs?schema=b", env, "/");
  assert.deepEqual(location, {
    kind: "url",
    url: "postgres://app:secret@db:6543/jobs?schema=b",
    display: "postgres://app@db:6543/jobs?schema=b",
    isDefault: false,
  });
  assert.equal(
    detachLogPath(location, env, "/"),
    "/home/u/.local/share/queuectl/postgres-db-6543-jobs-b.log",
  );
  assert.equal(
    detachLogPath(resolveDbLocation("postgresql://db/jobs", env, "/"), env, "/"),
    "/home/u/.local/share/queuectl/postgres-db-5432-jobs-queuectl.log",
  );
  assert.equal(detachLogPath(resolveDbLocation("q.db", env, "/srv"), env, "/"), "/srv/q.db.log");
  const refused = (text: string) => {
    try {
      resolveDbLocation(text, env, "/");
    } catch (error) {
      assert.ok(error instanceof UsageError);
      return error.message;
    }
    assert.fail(`${text} was accepted`);
  };
  assert.equal(refused("mysql://root:pw@h/q"), "Unsupported database URL: mysql://root@h/q");
  assert.equal(refused("postgres://u:pw@[bad/q"), "Database URL is not a valid URL");
});

Deno.test("channelName() is the schema's, at most 63 bytes, distinct for long names", () => {
  assert.equal(channelName("queuectl"), "queuectl_queuectl");
  const long = "a".repeat(60);
  const other = "a".repeat(59) + "b";
  assert.ok(channelName(long).length <= 63);
  assert.notEqual(channelName(long), channelName(other));
});

Deno.test("Notifier sends the first change at once, folds a burst into one more, and work wins", async () => {
  const sent: ChangeKind[] = [];
  const notifier = new Notifier({
    send: (kind) => {
      sent.push(kind);
      return Promise.resolve();
    },
    windowMs: 400,
  });
  notifier.changed("change");
  assert.deepEqual(sent, ["change"], "the first is sent at once");
  notifier.changed("change");
  notifier.changed("work");
  notifier.changed("change");
  assert.deepEqual(sent, ["change"], "a burst waits for the window");
  await poll(() => sent.length === 2, 2000, "the burst's notification");
  assert.deepEqual(sent, ["change", "work"], "one for the burst, and work wins");
  // Changes pending at close are sent by flush(), as one.
  notifier.changed("change");
  notifier.changed("change");
  assert.equal(sent.length, 2);
  await notifier.flush();
  assert.deepEqual(sent, ["change", "work", "change"]);
  // A notification sent inside a transaction counts for the window.
  notifier.sentInTransaction();
  notifier.changed("work");
  assert.equal(sent.length, 3);
  await notifier.flush();
  assert.deepEqual(sent.slice(3), ["work"]);
});
