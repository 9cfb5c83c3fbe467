/**
 * The worker shapes the suite runs its scenarios with. Most scenarios' arithmetic assumes one job
 * per worker process at a time (how many jobs run when every worker is killed, which worker holds
 * which job), so their workers run one slot. Scenarios whose checks hold at any shape run again
 * with workers of four slots (issue 10): many jobs per process, each with its own lease, fencing
 * and kill, and claims batched.
 *
 * @module
 */

import type { SandboxOptions, StoreKind } from "../helpers/sandbox.ts";

export interface Shape {
  /** Added to a scenario's name: "" for single-slot workers. */
  label: string;
  /** Jobs one worker runs at once. */
  slots: number;
  store: StoreKind;
  options: SandboxOptions;
}

export const SINGLE: Shape = {
  label: "",
  slots: 1,
  store: "sqlite",
  options: { workerArgs: ["--concurrency", "1"] },
};

export const FOUR_SLOTS: Shape = {
  label: " [4 slots per worker]",
  slots: 4,
  store: "sqlite",
  options: { workerArgs: ["--concurrency", "4"] },
};

/** Both shapes, for scenarios that hold at any. */
export const SHAPES: readonly Shape[] = [SINGLE, FOUR_SLOTS];

export const PG_SINGLE: Shape = {
  label: " [postgres]",
  slots: 1,
  store: "postgres",
  options: { ...SINGLE.options, store: "postgres" },
};

export const PG_FOUR_SLOTS: Shape = {
  label: " [4 slots per worker, postgres]",
  slots: 4,
  store: "postgres",
  options: { ...FOUR_SLOTS.options, store: "postgres" },
};

/** Single-slot workers on each store. */
export const STORES: readonly Shape[] = [SINGLE, PG_SINGLE];

/** Both shapes on each store. */
export const SHAPES_BOTH_STORES: readonly Shape[] = [...SHAPES, PG_SINGLE, PG_FOUR_SLOTS];
