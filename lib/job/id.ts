/**
 * Job ids: letters, digits and `._:-`, at most 128, starting with a letter or digit (so an id is
 * never taken for a flag or a hidden file, and needs no quoting in a shell).
 *
 * @module
 */

export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** Checks a job id as given by a user (enqueue or any command that takes an id). */
export function idProblem(id: string): string | undefined {
  if (id === "") return "is empty";
  if (id.length > 128) return `is ${id.length} characters long; the most is 128`;
  if (!ID_PATTERN.test(id)) {
    return "may hold only letters, digits and . _ : - and must start with a letter or digit";
  }
  return undefined;
}

/**
 * Checks a queue name as given by a user (`--queue`, the `queue` field, `pause`, `queue set`):
 * the rules of job ids.
 */
export function queueNameProblem(name: string): string | undefined {
  return idProblem(name);
}

/** The id a job gets when it was enqueued without one: its sequence number. */
export function generatedId(seq: number): string {
  return String(seq);
}
