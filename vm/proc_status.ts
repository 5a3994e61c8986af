/**
 * What /proc/<pid>/status says about a sandboxed process, and whether it is
 * what sluice.service asks for: a dynamic uid (DynamicUser=, systemd's range
 * 61184-65519), no new privileges, a seccomp filter, no capabilities.
 */

export interface Hardening {
  uid: number;
  noNewPrivs: number;
  seccomp: number;
  /** CapInh, CapPrm, CapEff, CapBnd, CapAmb as hex strings */
  caps: Record<string, string>;
}

/** The fields of /proc/<pid>/status that matter here; undefined when one is missing. */
export function parseStatus(text: string): Hardening | undefined {
  const field = (name: string) => text.match(new RegExp(`^${name}:\\s*(\\S+)`, "m"))?.[1];
  const uid = field("Uid");
  const nnp = field("NoNewPrivs");
  const seccomp = field("Seccomp");
  const caps: Record<string, string> = {};
  for (const c of ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]) {
    const v = field(c);
    if (v === undefined) return undefined;
    caps[c] = v;
  }
  if (uid === undefined || nnp === undefined || seccomp === undefined) return undefined;
  return { uid: Number(uid), noNewPrivs: Number(nnp), seccomp: Number(seccomp), caps };
}

/** Every way the process falls short of the unit's sandbox, one line each (none: it holds). */
export function hardeningProblems(h: Hardening): string[] {
  const problems: string[] = [];
  if (!(h.uid >= 61184 && h.uid <= 65519)) problems.push(`uid ${h.uid} is not a dynamic uid`);
  if (h.noNewPrivs !== 1) problems.push(`NoNewPrivs is ${h.noNewPrivs}, not 1`);
  if (h.seccomp !== 2) problems.push(`Seccomp is ${h.seccomp}, not 2 (filter)`);
  for (const [name, value] of Object.entries(h.caps)) {
    if (!/^0+$/.test(value)) problems.push(`${name} is ${value}, not empty`);
  }
  return problems;
}
