import assert from "node:assert/strict";
import { hardeningProblems, parseStatus } from "../../vm/proc_status.ts";

// As read from the sluice process on the Debian 12 VM (systemd 252).
const SANDBOXED = `Name:\tsluice
Uid:\t63872\t63872\t63872\t63872
CapInh:\t0000000000000000
CapPrm:\t0000000000000000
CapEff:\t0000000000000000
CapBnd:\t0000000000000000
CapAmb:\t0000000000000000
NoNewPrivs:\t1
Seccomp:\t2
Seccomp_filters:\t31
`;

Deno.test("vm proc status: parseStatus reads the uid, NoNewPrivs, Seccomp and capability sets", () => {
  const s = parseStatus(SANDBOXED);
  assert.deepEqual(s, {
    uid: 63872,
    noNewPrivs: 1,
    seccomp: 2,
    caps: {
      CapInh: "0000000000000000",
      CapPrm: "0000000000000000",
      CapEff: "0000000000000000",
      CapBnd: "0000000000000000",
      CapAmb: "0000000000000000",
    },
  });
  assert.deepEqual(hardeningProblems(s!), []);
});

Deno.test("vm proc status: parseStatus: a missing field is undefined, not a pass", () => {
  assert.equal(parseStatus(SANDBOXED.replace(/^Seccomp:.*\n/m, "")), undefined);
});

Deno.test("vm proc status: hardeningProblems names each shortfall, row by row", () => {
  const base = parseStatus(SANDBOXED)!;
  const rows: Array<[Partial<typeof base>, string]> = [
    [{ uid: 0 }, "uid 0 is not a dynamic uid"],
    [{ uid: 1000 }, "uid 1000 is not a dynamic uid"],
    [{ noNewPrivs: 0 }, "NoNewPrivs is 0, not 1"],
    [{ seccomp: 0 }, "Seccomp is 0, not 2 (filter)"],
    [
      { caps: { ...base.caps, CapBnd: "000001ffffffffff" } },
      "CapBnd is 000001ffffffffff, not empty",
    ],
  ];
  for (const [change, problem] of rows) {
    assert.deepEqual(hardeningProblems({ ...base, ...change }), [problem]);
  }
});
