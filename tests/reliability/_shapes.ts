/**
 * The worker shapes the suite runs its scenarios with. Most scenarios' arithmetic assumes one job
 * per worker process at a time (how many jobs run when every worker is killed, which worker holds
 * which job), so their workers run one slot. Scenarios whose checks hold at any shape run again
 * with workers of four slots (issue 10): many jobs per process, each with its own lease, fencing
 * and kill, and claims batched.
 *
 * @module
 */

import type { SandboxOptions } from "../helpers/sandbox.ts";

export interface Shape {
  /** Added to a scenario's name: "" for single-slot workers. */
  label: string;
  /** Jobs one worker runs at once. */
  slots: number;
  options: SandboxOptions;
}

export const SINGLE: Shape = {
  label: "",
  slots: 1,
  options: { workerArgs: ["--concurrency", "1"] },
};

export const FOUR_SLOTS: Shape = {
  label: " [4 slots per worker]",
  slots: 4,
  options: { workerArgs: ["--concurrency", "4"] },
};

/** Both shapes, for scenarios that hold at any. */
export const SHAPES: readonly Shape[] = [SINGLE, FOUR_SLOTS];
