/**
 * Reading a duration from a flag (`--timeout 5m`), for the commands that take one.
 *
 * @module
 */

import type { ParsedArgs } from "./args.ts";
import { flagString } from "./args.ts";
import { UsageError } from "../errors.ts";
import { parseDuration } from "../time_parse.ts";

/** The flag's duration in milliseconds, undefined when absent, or a usage error naming the flag. */
export function flagDuration(parsed: ParsedArgs, name: string): number | undefined {
  const text = flagString(parsed, name);
  if (text === undefined) return undefined;
  try {
    return parseDuration(text);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    throw new UsageError(`Invalid value "${text}" for --${name}: ${error.message}`);
  }
}
