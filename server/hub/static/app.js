// Sluice dashboard: live demo sensors and bridged MQTT sensors over Server-Sent Events.
// Plain browser script, no build step, no external resources.
// Test hooks: element ids #state #sensorA #sensorB #eps #count #lastId #heartbeat #close #chart
// #mqtt #mqttTiles #mqttEmpty, and window.sluiceDashboard.received (lastEventId of every sensor
// event, in arrival order).
"use strict";

(() => {
  const MAX_POINTS = 60;
  // The newest events first (?rewind=N, ignored when the browser resumes with Last-Event-ID):
  // the cards show the current values at once and the chart starts with the recent past. Both
  // sensors share the channel, so one event would show only one of them.
  const SENSORS_URL = `/events/sensors?rewind=${2 * MAX_POINTS}`;
  const HEARTBEAT_URL = "/events/heartbeat?rewind=1";
  // Bridged MQTT topics below sensors/ (not the demo's own channel "sensors"), the latest of each.
  const MQTT_URL = "/events?topic=sensors/%2B/%23&rewind=1";
  const MAX_TILES = 48;
  const SENSOR_NAMES = ["sensorA", "sensorB"];
  const EPS_WINDOW_MS = 5000;
  const EPS_REFRESH_MS = 500;

  const CHART = { width: 640, height: 200, left: 52, right: 10, top: 10, bottom: 22 };
  const SVG_NS = "http://www.w3.org/2000/svg";

  const el = (id) => document.getElementById(id);
  const ui = {
    state: el("state"),
    close: el("close"),
    sensorA: el("sensorA"),
    sensorB: el("sensorB"),
    sensorAPrev: el("sensorAPrev"),
    sensorBPrev: el("sensorBPrev"),
    eps: el("eps"),
    count: el("count"),
    lastId: el("lastId"),
    heartbeat: el("heartbeat"),
    chart: el("chart"),
    mqtt: el("mqtt"),
    mqttTiles: el("mqttTiles"),
    mqttEmpty: el("mqttEmpty"),
  };

  /** Last MAX_POINTS numeric values per sensor, oldest first. */
  const series = { sensorA: [], sensorB: [] };
  /** Arrival times of sensor-stream events inside the events-per-second window. */
  const arrivals = [];
  let total = 0;
  let closedByUser = false;
  let firstOpenAt = null;
  let framePending = false;
  let chartDirty = true;

  const hooks = { received: [], sources: {} };
  globalThis.sluiceDashboard = hooks; // window.sluiceDashboard

  function setState(state) {
    ui.state.textContent = state;
    ui.state.dataset.state = state;
  }

  function parse(data) {
    try {
      const value = JSON.parse(data);
      return value !== null && typeof value === "object" ? value : null;
    } catch {
      return null;
    }
  }

  function show(value) {
    if (value === undefined) return "–";
    if (typeof value === "number") return String(Math.round(value * 100) / 100);
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  }

  function asNumber(value) {
    if (typeof value === "boolean") return value ? 1 : 0;
    const n = typeof value === "number" ? value : Number(value);
    return Number.isFinite(n) ? n : null;
  }

  // --- sensors stream ------------------------------------------------------

  function onSensorEvent(event) {
    const now = performance.now();
    total += 1;
    arrivals.push(now);
    ui.count.textContent = String(total);
    if (event.lastEventId !== "") ui.lastId.textContent = event.lastEventId;

    const message = parse(event.data);
    if (message === null || message.TYPE === "KEEP-ALIVE") return;

    let sawSensor = false;
    for (const name of SENSOR_NAMES) {
      const reading = message[name];
      if (reading === null || typeof reading !== "object" || !("state" in reading)) continue;
      sawSensor = true;
      ui[name].textContent = show(reading.state);
      ui[name + "Prev"].textContent = show(reading.prevState);
      const v = asNumber(reading.state);
      if (v !== null) {
        const points = series[name];
        points.push(v);
        if (points.length > MAX_POINTS) points.splice(0, points.length - MAX_POINTS);
        chartDirty = true;
      }
    }
    if (sawSensor) hooks.received.push(event.lastEventId);
    scheduleFrame();
  }

  const sensors = new EventSource(SENSORS_URL);
  hooks.sources.sensors = sensors;
  sensors.onopen = () => {
    if (firstOpenAt === null) firstOpenAt = performance.now();
    setState("open");
  };
  sensors.onerror = () => {
    if (closedByUser) return;
    setState(sensors.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
  };
  // The hub names its events "event"; unnamed events arrive as "message".
  sensors.addEventListener("event", onSensorEvent);
  sensors.onmessage = onSensorEvent;

  // --- heartbeat stream ----------------------------------------------------

  function onHeartbeat(event) {
    const beat = parse(event.data);
    if (beat === null) return;
    const uptime = asNumber(beat.uptime);
    ui.heartbeat.textContent = show(beat.time) +
      (uptime === null ? "" : ` (uptime ${Math.floor(uptime)} s)`);
  }

  const heartbeat = new EventSource(HEARTBEAT_URL);
  hooks.sources.heartbeat = heartbeat;
  heartbeat.addEventListener("heartbeat", onHeartbeat);
  heartbeat.onmessage = onHeartbeat;

  // --- close button --------------------------------------------------------

  // --- bridged MQTT sensors ------------------------------------------------

  /** One tile per channel, by channel name. */
  const tiles = new Map();
  let mqtt = null;

  /** The latest value of a message as text: demo-shaped JSON, a number, or the text itself. */
  function tileValue(data) {
    const message = parse(data);
    if (message !== null) {
      const readings = SENSOR_NAMES.filter((n) => message[n] && "state" in message[n])
        .map((n) => `${n} ${show(message[n].state)}`);
      if (readings.length > 0) return readings.join(" · ");
      const text = JSON.stringify(message);
      return text.length > 80 ? text.slice(0, 79) + "…" : text;
    }
    // Anything else (numbers included) as the device sent it: "22.0" stays "22.0".
    return data.length > 80 ? data.slice(0, 79) + "…" : data;
  }

  function onMqttEvent(event) {
    const channel = event.type;
    let tile = tiles.get(channel);
    if (tile === undefined) {
      if (tiles.size >= MAX_TILES) return;
      const node = document.createElement("article");
      node.className = "tile";
      node.dataset.channel = channel;
      const name = document.createElement("h3");
      name.textContent = channel;
      const value = document.createElement("p");
      value.className = "tile-value";
      const meta = document.createElement("p");
      meta.className = "tile-meta";
      node.append(name, value, meta);
      // Tiles sorted by channel name, so devices keep their place.
      const after = [...tiles.keys()].filter((c) => c > channel).sort()[0];
      ui.mqttTiles.insertBefore(node, after === undefined ? null : tiles.get(after).node);
      tile = { node, value, meta };
      tiles.set(channel, tile);
      ui.mqttEmpty.hidden = true;
    }
    tile.value.textContent = tileValue(event.data);
    tile.meta.textContent = `id ${event.lastEventId || "–"} · ${
      new Date().toLocaleTimeString([], { hour12: false })
    }`;
  }

  /**
   * Reads a filter stream with fetch: its events are typed by channel, which
   * EventSource can only listen for by name, and these names are not known
   * in advance. Reconnects as EventSource does, resuming with Last-Event-ID.
   */
  function readStream(url, onEvent) {
    const abort = new AbortController();
    let lastId = "";
    let retryMs = 2000;
    const run = async () => {
      while (!abort.signal.aborted) {
        try {
          const headers = { Accept: "text/event-stream" };
          if (lastId !== "") headers["Last-Event-ID"] = lastId;
          const res = await fetch(url, { headers, signal: abort.signal, cache: "no-store" });
          if (!res.ok || res.body === null) throw new Error(`status ${res.status}`);
          const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
          let buf = "";
          let type = "";
          let data = null;
          let id = lastId;
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buf += value;
            // A CR at the end may be half of a CRLF: it waits for the next chunk.
            const cut = buf.endsWith("\r") ? buf.length - 1 : buf.length;
            const lines = buf.slice(0, cut).split(/\r\n|\r|\n/);
            buf = lines.pop() + buf.slice(cut);
            for (const line of lines) {
              if (line === "") {
                lastId = id;
                if (data !== null) onEvent({ type: type || "message", data, lastEventId: id });
                type = "";
                data = null;
                continue;
              }
              if (line.startsWith(":")) continue;
              const colon = line.indexOf(":");
              const field = colon < 0 ? line : line.slice(0, colon);
              const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
              if (field === "event") type = val;
              else if (field === "data") data = data === null ? val : data + "\n" + val;
              else if (field === "id" && !val.includes("\0")) id = val;
              else if (field === "retry" && /^\d+$/.test(val)) retryMs = Number(val);
            }
          }
        } catch {
          // Network error or refused: try again after the retry delay.
        }
        if (abort.signal.aborted) return;
        await new Promise((r) => setTimeout(r, retryMs));
      }
    };
    run();
    return { close: () => abort.abort() };
  }

  function openMqtt() {
    ui.mqtt.hidden = false;
    mqtt = readStream(MQTT_URL, onMqttEvent);
  }

  // Shown only when the hub bridges MQTT (/status has "mqtt"); a /status
  // behind auth leaves the section hidden.
  fetch("/status", { headers: { Accept: "application/json" } })
    .then((res) => (res.ok ? res.json() : null))
    .then((status) => {
      if (status !== null && typeof status === "object" && "mqtt" in status) openMqtt();
    })
    .catch(() => {});

  // --- close button --------------------------------------------------------

  ui.close.addEventListener("click", () => {
    closedByUser = true;
    sensors.close();
    heartbeat.close();
    mqtt?.close();
    setState("closed");
    ui.close.disabled = true;
  });

  // --- events per second ---------------------------------------------------

  function updateEps() {
    const now = performance.now();
    while (arrivals.length > 0 && arrivals[0] < now - EPS_WINDOW_MS) arrivals.shift();
    const since = firstOpenAt === null ? 0 : now - firstOpenAt;
    const windowMs = Math.max(1000, Math.min(EPS_WINDOW_MS, since));
    ui.eps.textContent = (arrivals.length * 1000 / windowMs).toFixed(1);
  }

  setInterval(updateEps, EPS_REFRESH_MS);

  /** Batches the per-event work that touches layout into one animation frame. */
  function scheduleFrame() {
    if (framePending) return;
    framePending = true;
    requestAnimationFrame(() => {
      framePending = false;
      updateEps();
      if (chartDirty) draw();
    });
  }

  // --- chart ---------------------------------------------------------------

  function svg(name, attrs, text) {
    const node = document.createElementNS(SVG_NS, name);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** A round step (1, 2 or 5 times a power of ten) near `span / 4`. */
  function niceStep(span) {
    const raw = span / 4;
    const power = 10 ** Math.floor(Math.log10(raw));
    const m = raw / power;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * power;
  }

  /**
   * The value range of the y axis: the data widened to whole steps, so the
   * labels are distinct round numbers. One value (or equal values) gets a
   * range around it; no value gets none (the chart says so).
   */
  function axisRange(values) {
    if (values.length === 0) return { lo: 0, hi: 1, step: 1 };
    let lo = Math.min(...values);
    let hi = Math.max(...values);
    if (lo === hi) {
      const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
      lo -= pad;
      hi += pad;
    }
    const step = niceStep(hi - lo);
    return { lo: Math.floor(lo / step) * step, hi: Math.ceil(hi / step) * step, step };
  }

  /** The labelled values from lo to hi, every step (at most 6, so labels never crowd). */
  function axisTicks(lo, hi, step) {
    let every = step;
    while ((hi - lo) / every > 5) every *= 2;
    const ticks = [];
    for (let i = 0; lo + i * every <= hi + every / 1e6; i++) ticks.push(lo + i * every);
    return ticks;
  }

  /** A tick's label with as many decimals as the step needs. */
  function tickLabel(v, step) {
    const decimals = Math.max(0, -Math.floor(Math.log10(step)));
    return v.toFixed(Math.min(decimals, 6));
  }

  /** Redraws the chart: each series right-aligned, newest value at the right edge. */
  function draw() {
    chartDirty = false;
    const all = [...series.sensorA, ...series.sensorB];
    const nodes = [];
    const plotW = CHART.width - CHART.left - CHART.right;
    const plotH = CHART.height - CHART.top - CHART.bottom;
    const { lo, hi, step } = axisRange(all);
    // Slot MAX_POINTS - 1 is the newest value; slot 0 the oldest kept.
    const x = (slot) => CHART.left + (slot / (MAX_POINTS - 1)) * plotW;
    const y = (v) => CHART.top + (1 - (v - lo) / (hi - lo)) * plotH;

    const ticks = all.length === 0 ? [] : axisTicks(lo, hi, step);
    if (all.length === 0) {
      nodes.push(svg("text", {
        class: "axis-label no-data",
        x: CHART.left + plotW / 2,
        y: CHART.top + plotH / 2,
        "text-anchor": "middle",
      }, "no values yet"));
    }
    for (const v of ticks) {
      nodes.push(svg("line", {
        class: "grid",
        x1: CHART.left,
        x2: CHART.width - CHART.right,
        y1: y(v),
        y2: y(v),
      }));
      nodes.push(svg("text", {
        class: "axis-label",
        x: CHART.left - 6,
        y: y(v) + 4,
        "text-anchor": "end",
      }, tickLabel(v, step)));
    }
    nodes.push(svg("text", {
      class: "axis-label",
      x: CHART.left,
      y: CHART.height - 4,
    }, `${MAX_POINTS} values ago`));
    nodes.push(svg("text", {
      class: "axis-label",
      x: CHART.width - CHART.right,
      y: CHART.height - 4,
      "text-anchor": "end",
    }, "latest"));
    for (const [name, cls] of [["sensorA", "series-a"], ["sensorB", "series-b"]]) {
      const points = series[name];
      if (points.length === 0) continue;
      const first = MAX_POINTS - points.length;
      const coords = points.map((v, i) => `${x(first + i).toFixed(1)},${y(v).toFixed(1)}`)
        .join(" ");
      nodes.push(svg("polyline", { class: cls, points: coords }));
    }
    ui.chart.replaceChildren(...nodes);
  }

  draw();
})();
