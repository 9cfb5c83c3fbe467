/**
 * Queue settings stored in the database (`queuectl config`): their names, defaults, validation and
 * formatting. Values are kept in base units: milliseconds for durations, bytes for sizes.
 *
 * @module
 */

import { UsageError } from "./errors.ts";
import { DEFAULT_LEASE_TIMEOUT_MS, DEFAULT_MAX_RETRIES } from "./job/job.ts";
import { formatDuration } from "./time.ts";
import { parseDuration } from "./time_parse.ts";

/** Effective settings, every value in base units. */
export interface Config {
  maxRetries: number;
  backoffBase: number;
  backoffMaxMs: number;
  /** 0 = no timeout. */
  jobTimeoutMs: number;
  leaseTimeoutMs: number;
  outputLimitBytes: number;
  /** 0 = keep completed jobs for ever. */
  retainCompletedMs: number;
}

type Kind = "count" | "factor" | "duration" | "size";

interface KeyDefinition {
  field: keyof Config;
  kind: Kind;
  default: number;
  min: number;
  max: number;
  /** Unit of the number in `--json` output. */
  unit: "count" | "factor" | "seconds" | "bytes";
  help: string;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Every key `config` accepts, in the order `config get` lists them. */
export const CONFIG_KEYS: Readonly<Record<string, KeyDefinition>> = {
  "max-retries": {
    field: "maxRetries",
    kind: "count",
    default: DEFAULT_MAX_RETRIES,
    min: 0,
    max: 1000,
    unit: "count",
    help: "retries after the first attempt, for jobs enqueued without max_retries",
  },
  "backoff-base": {
    field: "backoffBase",
    kind: "factor",
    default: 2,
    min: 1,
    max: 1000,
    unit: "factor",
    help: "retry n waits min(backoff-max, backoff-base^n) seconds",
  },
  "backoff-max": {
    field: "backoffMaxMs",
    kind: "duration",
    default: 3_600_000,
    min: 0,
    max: 30 * 86_400_000,
    unit: "seconds",
    help: "longest wait between retries",
  },
  "job-timeout": {
    field: "jobTimeoutMs",
    kind: "duration",
    default: 300_000,
    min: 0,
    max: 30 * 86_400_000,
    unit: "seconds",
    help: "time limit of a job without its own timeout (0 = none)",
  },
  "lease-timeout": {
    field: "leaseTimeoutMs",
    kind: "duration",
    default: DEFAULT_LEASE_TIMEOUT_MS,
    min: 1000,
    max: 86_400_000,
    unit: "seconds",
    help: "a job whose worker stops renewing its lease this long is recovered",
  },
  "output-limit": {
    field: "outputLimitBytes",
    kind: "size",
    default: MiB,
    min: KiB,
    max: GiB,
    unit: "bytes",
    help: "output kept per stream and attempt (head and tail, the middle cut)",
  },
  "retain-completed": {
    field: "retainCompletedMs",
    kind: "duration",
    default: 7 * 86_400_000,
    min: 0,
    max: 3650 * 86_400_000,
    unit: "seconds",
    help: "workers delete completed and cancelled jobs this long after they finished (0 = keep)",
  },
};

export const DEFAULT_CONFIG: Config = Object.fromEntries(
  Object.values(CONFIG_KEYS).map((d) => [d.field, d.default]),
) as unknown as Config;

/** The definition of `key`, or a usage error that lists the valid keys. */
export function configKey(key: string): KeyDefinition {
  const definition = CONFIG_KEYS[key];
  if (definition === undefined || !Object.hasOwn(CONFIG_KEYS, key)) {
    throw new UsageError(`Unknown config key "${key}"`, {
      hint: `valid keys: ${Object.keys(CONFIG_KEYS).join(", ")}`,
      typo: { input: key, candidates: Object.keys(CONFIG_KEYS) },
    });
  }
  return definition;
}

const SIZE = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i;
const SIZE_UNIT: Record<string, number> = { b: 1, k: KiB, m: MiB, g: GiB };

function parseSize(text: string): number {
  const match = SIZE.exec(text.trim());
  if (!match) throw new RangeError("is not a size; use bytes or e.g. 512KiB, 1MiB, 2GiB");
  const unit = (match[2] ?? "b")[0]!.toLowerCase();
  return Math.round(Number(match[1]) * SIZE_UNIT[unit]!);
}

/** Formats bytes with binary units: `1MiB`, `512KiB`, `1000B`. */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [["GiB", GiB], ["MiB", MiB], ["KiB", KiB]] as const) {
    if (bytes >= size && bytes % (size / 1024) === 0) {
      const n = bytes / size;
      return `${Number.isInteger(n) ? n : n.toFixed(2).replace(/0+$/, "")}${unit}`;
    }
  }
  return `${bytes}B`;
}

/** Parses and range-checks a value typed by a user; returns it in base units. */
export function parseConfigValue(key: string, text: string): number {
  const definition = configKey(key);
  let value: number;
  try {
    switch (definition.kind) {
      case "count":
        if (!/^\d+$/.test(text.trim())) throw new RangeError("must be a whole number");
        value = Number(text);
        break;
      case "factor":
        if (!/^\d+(\.\d+)?$/.test(text.trim())) throw new RangeError("must be a number");
        value = Number(text);
        break;
      case "duration":
        value = parseDuration(text);
        break;
      case "size":
        value = parseSize(text);
        break;
    }
    if (value < definition.min || value > definition.max) {
      throw new RangeError(
        `must be between ${formatConfigValue(key, definition.min)} and ${
          formatConfigValue(key, definition.max)
        }`,
      );
    }
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    throw new UsageError(`Invalid value "${text}" for ${key}: ${error.message}`, {
      hint: `${key}: ${definition.help}`,
    });
  }
  return value;
}

/** A value for people: durations as `1h30m`, sizes as `1MiB`. */
export function formatConfigValue(key: string, value: number): string {
  const definition = configKey(key);
  switch (definition.kind) {
    case "duration":
      return value === 0 ? "0" : formatDuration(value);
    case "size":
      return formatSize(value);
    default:
      return String(value);
  }
}

/** A value for `--json`: seconds for durations, bytes for sizes. */
export function jsonConfigValue(key: string, value: number): number {
  return configKey(key).kind === "duration" ? value / 1000 : value;
}

/**
 * Builds the effective config from stored overrides (key → base-unit number as text).
 * A stored value that no longer validates is ignored in favour of the default.
 */
export function resolveConfig(stored: Readonly<Record<string, string>>): Config {
  const config = { ...DEFAULT_CONFIG };
  for (const [key, text] of Object.entries(stored)) {
    const definition = CONFIG_KEYS[key];
    if (definition === undefined) continue;
    const value = Number(text);
    if (Number.isFinite(value) && value >= definition.min && value <= definition.max) {
      config[definition.field] = value;
    }
  }
  return config;
}

/** One setting as `config get --json` prints it (and the dashboard's settings page reads it). */
export function configEntryJson(
  key: string,
  value: number,
  isSet: boolean,
): Record<string, unknown> {
  const definition = configKey(key);
  return {
    value: jsonConfigValue(key, value),
    unit: definition.unit,
    default: jsonConfigValue(key, definition.default),
    set: isSet,
  };
}
