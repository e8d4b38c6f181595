/**
 * The MQTT client package, pinned. Only the bridge loads this module, and only
 * when it starts (a dynamic import Deno does not follow ahead of time), so a
 * hub without `--mqtt` never resolves the package. A compiled binary carries
 * it with `deno compile --include server/hub/mqtt/_mqtt_client.ts`.
 *
 * @module
 */

export { connect } from "npm:mqtt@5.16.0";
export type { IConnackPacket, IPublishPacket, MqttClient } from "npm:mqtt@5.16.0";
