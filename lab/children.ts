/**
 * Every process the lab starts (workers, the dynalite child) is listed here from
 * its spawn to its exit, so that no way out of the lab leaves one running: the
 * teardown stops them in order, and `killChildren()` is the last resort of the
 * exit paths in lab/main.ts (a second Ctrl-C, an uncaught error, Deno.exit, which
 * does not end child processes itself).
 */

interface Tracked {
  kill(signal: Deno.Signal): void;
}

const live = new Map<number, Tracked>();

/** Lists `child` until its exit. */
export function trackChild(child: Deno.ChildProcess): void {
  live.set(child.pid, child);
  child.status.finally(() => live.delete(child.pid)).catch(() => undefined);
}

/** PIDs of the lab's children that have not exited. */
export function liveChildren(): number[] {
  return [...live.keys()];
}

/** SIGKILLs every live child at once (synchronous: safe in an exit handler); returns how many. */
export function killChildren(): number {
  let n = 0;
  for (const [pid, child] of live) {
    try {
      child.kill("SIGKILL");
      n++;
    } catch {
      // exited meanwhile
    }
    live.delete(pid);
  }
  return n;
}
