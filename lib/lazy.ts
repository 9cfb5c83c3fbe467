/**
 * Importing a module of this program only when it runs.
 *
 * Deno loads at start-up every module that an import names with a literal, `import("./x.ts")`
 * included, and every command is a new process: a literal import of the worker, the migrations or
 * the help text would make `queuectl status` load them too. So modules that only some paths use
 * are named by a computed URL, which Deno resolves only when the import runs. The type argument
 * keeps the import typed (type positions load nothing); tests/cli/startup_test.ts checks that it
 * names the same module as the path. `deno compile` gets these files through `--include lib/`.
 *
 * @module
 */

/**
 * Imports `path`, relative to the module `base` (its `import.meta.url`), at run time only.
 *
 * @example
 * const { Worker } = await lazy<typeof import("./worker/worker.ts")>(
 *   import.meta.url,
 *   "./worker/worker.ts",
 * );
 */
export function lazy<M>(base: string, path: string): Promise<M> {
  return import(new URL(path, base).href);
}
