/**
 * CPU time and peak RSS of a worker and every process below it (a `deno task` wrapper and its
 * `deno run`, or a binary), read from /proc: the bench's "CPU per message" must count the whole
 * tree, not just the process the lab spawned. Linux only; elsewhere the figures are 0.
 */

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
export const TICKS_PER_SECOND = 100;

/** The fields of /proc/<pid>/stat the tree needs. */
export interface StatLine {
  ppid: number;
  /** utime + stime, in clock ticks */
  cpuTicks: number;
}

/**
 * Parses one /proc/<pid>/stat line. The command name (field 2) may hold spaces and parentheses,
 * so the fields are counted from the last ")".
 */
export function parseStat(text: string): StatLine | undefined {
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  // After ")": state(3) ppid(4) ... utime(14) stime(15): indices 0, 1, ..., 11, 12.
  const fields = text.slice(close + 2).split(" ");
  const ppid = Number(fields[1]);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(ppid) || !Number.isFinite(utime) || !Number.isFinite(stime)) {
    return undefined;
  }
  return { ppid, cpuTicks: utime + stime };
}

/** `root` and its descendants, given every process's parent. */
export function descendants(root: number, parents: ReadonlyMap<number, number>): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of parents) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  const out: number[] = [];
  const queue = parents.has(root) ? [root] : [];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** What the tree below one pid has used so far. */
export interface TreeUsage {
  /** user + system CPU of the live processes of the tree, ms */
  cpuMs: number;
  /** sum of the processes' VmHWM (each one's peak resident set), kB: an upper bound of the tree's */
  peakRssKb: number;
  /** processes in the tree */
  processes: number;
}

async function readOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return undefined; // gone meanwhile, or not Linux
  }
}

/** CPU and peak RSS of `root` and its descendants now; zeros when /proc is unreadable. */
export async function processTreeUsage(root: number): Promise<TreeUsage> {
  const stats = new Map<number, StatLine>();
  try {
    for await (const entry of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      const text = await readOrUndefined(`/proc/${entry.name}/stat`);
      const stat = text === undefined ? undefined : parseStat(text);
      if (stat) stats.set(Number(entry.name), stat);
    }
  } catch {
    return { cpuMs: 0, peakRssKb: 0, processes: 0 };
  }
  const parents = new Map([...stats].map(([pid, s]) => [pid, s.ppid]));
  let ticks = 0;
  let peakRssKb = 0;
  const tree = descendants(root, parents);
  for (const pid of tree) {
    ticks += stats.get(pid)!.cpuTicks;
    const status = await readOrUndefined(`/proc/${pid}/status`);
    peakRssKb += Number(status?.match(/^VmHWM:\s+(\d+)\s+kB/m)?.[1] ?? 0);
  }
  return { cpuMs: (ticks * 1000) / TICKS_PER_SECOND, peakRssKb, processes: tree.length };
}
