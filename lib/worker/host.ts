/**
 * Which host a worker runs on, precisely enough to judge it by its pid: the host's name (for
 * people), and an id of the pid namespace (boot id plus the namespace's inode), since a pid means
 * something only inside the namespace that gave it out. Two containers or network-namespace hosts
 * that share a kernel have the same boot id but their own pid namespaces.
 *
 * @module
 */

function readFirstLine(path: string): string | null {
  try {
    return Deno.readTextFileSync(path).split("\n")[0]!.trim() || null;
  } catch {
    return null;
  }
}

function pidNamespace(): string | null {
  try {
    return Deno.readLinkSync("/proc/self/ns/pid");
  } catch {
    return null;
  }
}

let cached: { name: string; id: string } | undefined;

/** This process's host: its name and its pid namespace's id. */
export function thisHost(): { name: string; id: string } {
  if (cached) return cached;
  const name = Deno.hostname();
  const boot = readFirstLine("/proc/sys/kernel/random/boot_id");
  const ns = pidNamespace();
  // Without /proc (not Linux) the name is all there is: pid checks then stay with that name.
  cached = { name, id: boot && ns ? `${name}/${boot}/${ns}` : name };
  return cached;
}
