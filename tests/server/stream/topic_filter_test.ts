import assert from "node:assert/strict";
import {
  CHANNEL_NAME_RE,
  isChannelName,
  MAX_CHANNEL_LEVELS,
  parseTopicFilter,
  TopicFilterError,
  topicMatches,
  topicToChannel,
} from "../../../server/stream/topic_filter.ts";

const GOOD = [
  "news",
  "default",
  "sensors/esp-01/state",
  "site.1/room_2/temp~avg",
  "a/b/c/d/e/f/g/h",
  "x".repeat(128),
  `${"a".repeat(128)}/${"b".repeat(127)}`,
  "...",
  "a/.b/c.",
];

const BAD = [
  "",
  "/",
  "a//b",
  "/x",
  "x/",
  "a b",
  "sensors/température",
  "$SYS/broker/uptime",
  "$share/g/a",
  "a/+/b",
  "a/#",
  "a:b",
  "a%20b",
  ".",
  "..",
  "a/../b",
  "a/./b",
  "a/..",
  "a/b/c/d/e/f/g/h/i",
  "x".repeat(129),
  `${"a".repeat(128)}/${"b".repeat(128)}`,
  "a\nb",
  "a\0b",
];

Deno.test("isChannelName accepts levels of [A-Za-z0-9._~-] joined by /", () => {
  for (const name of GOOD) assert.ok(isChannelName(name), name);
});

Deno.test("isChannelName refuses empty levels, $ topics, spaces, non-ASCII, dot levels, too long", () => {
  for (const name of BAD) assert.ok(!isChannelName(name), JSON.stringify(name));
});

Deno.test("CHANNEL_NAME_RE and isChannelName agree with topicToChannel", () => {
  for (const name of [...GOOD, ...BAD]) {
    assert.equal(CHANNEL_NAME_RE.test(name), isChannelName(name), name);
    assert.equal(topicToChannel(name), isChannelName(name) ? name : undefined, name);
  }
});

Deno.test("topicToChannel maps a topic to the channel of the same name", () => {
  assert.equal(topicToChannel("sensors/esp-01/state"), "sensors/esp-01/state");
  assert.equal(topicToChannel("a//b"), undefined);
  assert.equal(topicToChannel("/x"), undefined);
  assert.equal(topicToChannel("with space"), undefined);
  assert.equal(topicToChannel("capteur/é"), undefined);
});

Deno.test("+ matches exactly one level", () => {
  const f = parseTopicFilter("sensors/+/temp");
  assert.ok(!f.exact);
  assert.ok(f.matches("sensors/esp-01/temp"));
  assert.ok(f.matches("sensors/x/temp"));
  assert.ok(!f.matches("sensors/temp"));
  assert.ok(!f.matches("sensors/a/b/temp"));
  assert.ok(!f.matches("sensors/esp-01/temp/x"));
  assert.ok(!f.matches("sensors/esp-01/hum"));
  assert.ok(!f.matches("other/esp-01/temp"));
  assert.ok(parseTopicFilter("+").matches("news"));
  assert.ok(!parseTopicFilter("+").matches("a/b"));
  assert.ok(parseTopicFilter("+/+").matches("a/b"));
});

Deno.test("# matches the parent level and any levels below it", () => {
  const f = parseTopicFilter("sensors/#");
  assert.ok(f.matches("sensors"));
  assert.ok(f.matches("sensors/a"));
  assert.ok(f.matches("sensors/a/b/c"));
  assert.ok(!f.matches("sensorsX"));
  assert.ok(!f.matches("sensorsX/a"));
  assert.ok(!f.matches("alarms/sensors"));
  const all = parseTopicFilter("#");
  for (const name of GOOD) assert.ok(all.matches(name), name);
  const g = parseTopicFilter("a/+/#");
  assert.ok(g.matches("a/b"));
  assert.ok(g.matches("a/b/c/d"));
  assert.ok(!g.matches("a"));
});

Deno.test("a filter without wildcards matches its own channel only", () => {
  const f = parseTopicFilter("site.1/temp");
  assert.ok(f.exact);
  assert.ok(f.matches("site.1/temp"));
  // "." is a literal, not a regex wildcard.
  assert.ok(!f.matches("siteX1/temp"));
  assert.ok(!f.matches("site.1/temp/x"));
});

Deno.test("literal levels are not regular expressions", () => {
  const f = parseTopicFilter("a.b/+/c-d");
  assert.ok(f.matches("a.b/x/c-d"));
  assert.ok(!f.matches("aXb/x/c-d"));
});

Deno.test("parseTopicFilter refuses malformed filters with a TopicFilterError naming them", () => {
  const cases: [string, string][] = [
    ["", "non-empty"],
    ["a/#/b", `"#" may only be the last level`],
    ["a+/b", "a wildcard must be a whole level"],
    ["a/b#", "a wildcard must be a whole level"],
    ["a//b", "level 2 is empty"],
    ["/a", "level 1 is empty"],
    ["a/", "level 2 is empty"],
    ["$SYS/#", "level 1 must be"],
    ["a b/+", "level 1 must be"],
    ["a/../+", "level 2 must be"],
    ["a/b/c/d/e/f/g/h/i", `at most ${MAX_CHANNEL_LEVELS} levels: received 9`],
    ["x".repeat(257), "at most 256 characters: received 257"],
  ];
  for (const [filter, reason] of cases) {
    assert.throws(() => parseTopicFilter(filter), (err) => {
      assert.ok(err instanceof TopicFilterError);
      assert.ok(err.message.includes(reason), `${filter}: ${err.message}`);
      assert.equal(err.filter, filter);
      return true;
    });
  }
});

Deno.test("topicMatches parses and matches in one call", () => {
  assert.ok(topicMatches("sensors/+/temp", "sensors/esp-01/temp"));
  assert.ok(!topicMatches("sensors/+", "sensors/esp-01/temp"));
  assert.throws(() => topicMatches("a/#/b", "a"), TopicFilterError);
});

Deno.test("a compiled filter agrees with a level-by-level reference matcher", () => {
  const ref = (filter: string, channel: string): boolean => {
    const f = filter.split("/");
    const c = channel.split("/");
    for (let i = 0; i < f.length; i++) {
      if (f[i] === "#") return true;
      if (i >= c.length) return false;
      if (f[i] !== "+" && f[i] !== c[i]) return false;
    }
    return f.length === c.length;
  };
  const levels = ["a", "b", "+", "#"];
  const channels: string[] = [];
  const filters: string[] = [];
  const build = (prefix: string[], depth: number, out: string[], alphabet: string[]) => {
    if (prefix.length > 0) out.push(prefix.join("/"));
    if (depth === 0) return;
    for (const l of alphabet) build([...prefix, l], depth - 1, out, alphabet);
  };
  build([], 3, channels, ["a", "b"]);
  build([], 3, filters, levels);
  for (const filter of filters) {
    let parsed;
    try {
      parsed = parseTopicFilter(filter);
    } catch {
      continue;
    }
    for (const channel of channels) {
      assert.equal(parsed.matches(channel), ref(filter, channel), `${filter} vs ${channel}`);
    }
  }
});
