/**
 * The Debian mirror this machine's apt uses, as mmdebstrap mirror lines: the
 * VM image is built from the same archive (and through the same proxy) as the
 * host's packages, never from a guessed one.
 */

/** `deb URI SUITE COMPONENTS` lines for `suite` and its -updates/-security, from apt source files. */
export function mirrorLines(files: readonly string[], suite: string): string[] {
  const out: string[] = [];
  for (const text of files) {
    if (/^\s*Types:/m.test(text)) out.push(...fromDeb822(text, suite));
    else out.push(...fromOneLine(text, suite));
  }
  return [...new Set(out)];
}

function ofSuite(name: string, suite: string): boolean {
  return name === suite || name.startsWith(`${suite}-`) || name.startsWith(`${suite}/`);
}

function fromDeb822(text: string, suite: string): string[] {
  const out: string[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const field = (name: string) =>
      stanza.match(new RegExp(`^${name}:[ \\t]*(.*)$`, "mi"))?.[1]?.trim().split(/\s+/) ?? [];
    if (!field("Types").includes("deb")) continue;
    if (field("Enabled")[0]?.toLowerCase() === "no") continue;
    const components = field("Components").join(" ") || "main";
    for (const uri of field("URIs")) {
      for (const s of field("Suites")) {
        if (ofSuite(s, suite)) out.push(`deb ${uri} ${s} ${components}`);
      }
    }
  }
  return out;
}

function fromOneLine(text: string, suite: string): string[] {
  const out: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*/, "").replace(/\[[^\]]*\]/, "").trim();
    const [type, uri, s, ...components] = line.split(/\s+/);
    if (type !== "deb" || !uri || !s || !ofSuite(s, suite)) continue;
    out.push(`deb ${uri} ${s} ${components.join(" ") || "main"}`);
  }
  return out;
}

/** The apt options worth passing on (proxies, TLS, date checks), from `apt-config dump` output. */
export function aptOptions(dump: string): string[] {
  return dump.split("\n")
    .map((l) => l.trim())
    .filter((l) =>
      /^Acquire::(https?::(Proxy|Verify-Peer|Verify-Host|CaInfo)|Check-Valid-Until|Check-Date)\b/i
        .test(l)
    )
    .map((l) => l.replace(/;$/, ""));
}
