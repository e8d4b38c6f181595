// Sluice dashboard: live demo sensors over Server-Sent Events.
// Plain browser script, no build step, no external resources.
// Test hooks: element ids #state #sensorA #sensorB #eps #count #lastId #heartbeat #close #chart,
// and window.sluiceDashboard.received (lastEventId of every sensor event, in arrival order).
"use strict";

(() => {
  const SENSORS_URL = "/events/sensors";
  const HEARTBEAT_URL = "/events/heartbeat";
  const SENSOR_NAMES = ["sensorA", "sensorB"];
  const MAX_POINTS = 60;
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

  ui.close.addEventListener("click", () => {
    closedByUser = true;
    sensors.close();
    heartbeat.close();
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

  /** Redraws the chart: each series right-aligned, newest value at the right edge. */
  function draw() {
    chartDirty = false;
    const all = [...series.sensorA, ...series.sensorB];
    const nodes = [];
    const plotW = CHART.width - CHART.left - CHART.right;
    const plotH = CHART.height - CHART.top - CHART.bottom;
    let lo = all.length === 0 ? 0 : Math.min(...all);
    let hi = all.length === 0 ? 1 : Math.max(...all);
    if (lo === hi) [lo, hi] = [lo - 1, hi + 1];
    // Slot MAX_POINTS - 1 is the newest value; slot 0 the oldest kept.
    const x = (slot) => CHART.left + (slot / (MAX_POINTS - 1)) * plotW;
    const y = (v) => CHART.top + (1 - (v - lo) / (hi - lo)) * plotH;

    for (const v of [lo, (lo + hi) / 2, hi]) {
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
      }, show(Math.round(v))));
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
