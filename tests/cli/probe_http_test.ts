import assert from "node:assert/strict";
import {
  enrichVerdict,
  type Identity,
  looksLikeEnrichment,
  looksLikeValidator,
  validatorVerdict,
} from "../../src/cli/probe_http.ts";

const answer = (status: number, json = true, location: string | null = null) => ({
  status,
  json,
  location,
});
const ENRICH: Identity = { health: answer(200), user: answer(404), ingest: answer(404) };
const VALIDATOR: Identity = { health: answer(200), user: answer(404), ingest: answer(405) };
const NOTHING: Identity = { health: answer(404), user: answer(404, false), ingest: answer(404) };
const REDIRECT: Identity = {
  health: answer(302, false, "https://login.example/"),
  user: answer(302, false, "https://login.example/"),
  ingest: answer(301, false, "https://login.example/ingest"),
};

Deno.test("probe http: looksLike: the enrichment API and the validator told apart", () => {
  assert.deepEqual([looksLikeEnrichment(ENRICH), looksLikeValidator(ENRICH)], [true, false]);
  assert.deepEqual([looksLikeEnrichment(VALIDATOR), looksLikeValidator(VALIDATOR)], [false, true]);
  assert.deepEqual([looksLikeEnrichment(NOTHING), looksLikeValidator(NOTHING)], [false, false]);
  for (const status of [400, 405, 415, 422]) {
    assert.ok(looksLikeValidator({ ...NOTHING, ingest: answer(status) }), String(status));
  }
  for (const status of [200, 404, 302, 500]) {
    assert.ok(!looksLikeValidator({ ...NOTHING, ingest: answer(status) }), String(status));
  }
});

const rows: Array<[string, Identity, Identity, boolean, RegExp]> = [
  ["right way round", ENRICH, VALIDATOR, true, /^enrichment API: /],
  ["swapped", VALIDATOR, ENRICH, false, /looks like the validator.*swapped/],
  ["validator twice", VALIDATOR, VALIDATOR, false, /looks like the validator \(/],
  ["nothing there", NOTHING, VALIDATOR, false, /is not the enrichment API/],
  ["redirect", REDIRECT, VALIDATOR, false, /^ENRICH_URL redirects to https:\/\/login/],
];
for (const [name, enrich, validator, ok, line] of rows) {
  Deno.test(`probe http: enrichVerdict: ${name}`, () => {
    const v = enrichVerdict("http://e", enrich, validator);
    assert.equal(v.ok, ok);
    assert.match(v.line, line);
  });
}

const vRows: Array<[string, Identity, Identity, boolean, RegExp]> = [
  ["right way round", VALIDATOR, ENRICH, true, /^validator: .* exists/],
  ["swapped", ENRICH, VALIDATOR, false, /looks like the enrichment API.*swapped/],
  ["404 is not the validator", NOTHING, ENRICH, false, /is not the validator.*HTTP 404/],
  [
    "redirect",
    REDIRECT,
    ENRICH,
    false,
    /^VALIDATOR_URL redirects to https:\/\/login.example\/ingest/,
  ],
];
for (const [name, validator, enrich, ok, line] of vRows) {
  Deno.test(`probe http: validatorVerdict: ${name}`, () => {
    const v = validatorVerdict("http://v/ingest", validator, enrich);
    assert.equal(v.ok, ok);
    assert.match(v.line, line);
  });
}
