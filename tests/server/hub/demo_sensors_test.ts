import assert from "node:assert/strict";
import {
  DEFAULT_DEMO_SENSORS,
  DemoSensors,
  type SensorChange,
  sensorStateJson,
} from "../../../server/hub/demo_sensors.ts";

/** A random source replaying `values`, then 0 forever. */
function replay(values: number[]): () => number {
  let i = 0;
  return () => values[i++] ?? 0;
}

Deno.test("DemoSensors reports only changes of value, each with the previous value", async () => {
  const changes: SensorChange[] = [];
  const updates: [string, number, number][] = [];
  const done = Promise.withResolvers<void>();
  // Each update draws a value, then a delay: value 0.5 → 32768, 0.5 again (no change), 0.25.
  const sensors = new DemoSensors((c) => changes.push(c), {
    names: ["a"],
    minIntervalMs: 0,
    maxIntervalMs: 0,
    random: replay([0.5, 0, 0.5, 0, 0.25, 0]),
    onUpdate: (name, prev, state) => {
      updates.push([name, prev, state]);
      if (updates.length === 3) done.resolve();
    },
  });
  sensors.start();
  await done.promise;
  sensors.stop();
  assert.deepEqual(updates, [["a", 0, 32768], ["a", 32768, 32768], ["a", 32768, 16384]]);
  assert.deepEqual(changes, [
    { name: "a", state: 32768, prevState: 0 },
    { name: "a", state: 16384, prevState: 32768 },
  ]);
  assert.equal(sensors.value("a"), 16384);
  assert.equal(sensors.running, false);
});

Deno.test("DemoSensors updates every sensor once at start and stops all timers", () => {
  const changes: SensorChange[] = [];
  using sensors = new DemoSensors((c) => changes.push(c), { random: () => 0.75 }).start();
  assert.deepEqual(sensors.names, DEFAULT_DEMO_SENSORS.names);
  assert.deepEqual(changes.map((c) => c.name), ["sensorA", "sensorB"]);
  assert.equal(changes[0].state, 49152);
  assert.equal(sensors.running, true);
});

Deno.test("DemoSensors validates its options at construction", () => {
  const noop = () => {};
  assert.throws(
    () => new DemoSensors(noop, { minIntervalMs: 5, maxIntervalMs: 1 }),
    { name: "RangeError", message: "minIntervalMs must not exceed maxIntervalMs (1): received 5" },
  );
  assert.throws(() => new DemoSensors(noop, { minIntervalMs: -1 }), RangeError);
  assert.throws(() => new DemoSensors(noop, { maxIntervalMs: NaN }), RangeError);
  assert.throws(() => new DemoSensors(noop, { maxValue: 0 }), RangeError);
  assert.throws(() => new DemoSensors(noop, { names: ["a", "a"] }), TypeError);
  assert.throws(() => new DemoSensors(noop, { names: [] }), TypeError);
  assert.throws(() => new DemoSensors(noop, { names: ['a"b'] }), TypeError);
});

Deno.test("sensorStateJson has the original sketch's shape", () => {
  assert.equal(
    sensorStateJson({ name: "sensorB", state: 12408, prevState: 13502 }),
    `{"TYPE":"STATE","sensorB":{"state":12408,"prevState":13502}}`,
  );
});
