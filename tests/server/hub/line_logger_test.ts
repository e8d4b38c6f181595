import assert from "node:assert/strict";
import { isoTime } from "../../../server/hub/line_logger.ts";

Deno.test("isoTime formats like Date.toISOString, across leap years and days' ends", () => {
  const samples = [0, 951_782_400_000, 951_868_799_999, 1_709_164_800_000, 4_102_444_799_999];
  for (let ms = 0; ms < 4_200_000_000_000; ms += 7_654_321_987) samples.push(ms);
  for (const ms of samples) assert.equal(isoTime(ms), new Date(ms).toISOString(), String(ms));
});
