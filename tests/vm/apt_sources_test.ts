import assert from "node:assert/strict";
import { aptOptions, mirrorLines } from "../../vm/apt_sources.ts";

const DEB822 = `Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
`;
const OTHERS = `Types: deb
URIs: https://deb.nodesource.com/node_20.x
Suites: nodistro
Components: main
`;

Deno.test("vm apt sources: mirrorLines: the suite's archives from deb822 sources, other repositories left out", () => {
  assert.deepEqual(mirrorLines([DEB822, OTHERS], "bookworm"), [
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
  ]);
});

Deno.test("vm apt sources: mirrorLines: one-line sources.list, options and comments dropped", () => {
  const list =
    "# local mirror\ndeb [arch=amd64] http://mirror.example/debian bookworm main contrib\n" +
    "deb-src http://mirror.example/debian bookworm main\n" +
    "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n";
  assert.deepEqual(mirrorLines([list], "bookworm"), [
    "deb http://mirror.example/debian bookworm main contrib",
  ]);
});

Deno.test("vm apt sources: aptOptions keeps proxies and date checks from apt-config dump", () => {
  const dump =
    'APT "";\nAcquire::http::Proxy "http://proxy:3128";\nAcquire::Check-Valid-Until "false";\n' +
    'Acquire::IndexTargets::deb::DEP-11 "";\nDir "/";';
  assert.deepEqual(aptOptions(dump), [
    'Acquire::http::Proxy "http://proxy:3128"',
    'Acquire::Check-Valid-Until "false"',
  ]);
});
