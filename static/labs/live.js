// The live view: one WebSocket per lab; a snapshot, then deltas; each section redrawn from data.
// Text from the server is always set with textContent (never parsed as HTML).
(function () {
  "use strict";
  const root = document.getElementById("lab");
  if (!root) return;
  const state = { sections: {}, events: [], highlight: new Set(), ranges: [] };
  // While a past moment is shown (the timeline), live frames keep arriving into `state` but are not drawn.
  let viewing = null;  // { at_ms, view } of the rebuilt moment, or null when live
  const shown = () => (viewing ? viewing.view : state.sections);
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k === "style") node.setAttribute("style", v);
      else node.setAttribute(k, v);
    }
    for (const c of children || []) if (c) node.appendChild(c);
    return node;
  }
  const kb = (n) => (n == null ? "–" : n < 1024 ? n + " B" : (n / 1024).toFixed(1) + " KB");
  const seconds = (ms) => (ms / 1000).toFixed(1) + " s";

  function renderBrokers(brokers) {
    const box = $("brokers"); box.replaceChildren();
    for (const b of brokers) {
      const status = !b.alive ? "down" : b.isolated ? "isolated" : b.fenced ? "fenced" : "up";
      box.appendChild(el("div", { id: "broker-" + b.id, class: "broker " + status }, [
        el("strong", { text: "Broker " + b.id }),
        el("span", { text: " · " + status + " · leads " + b.leading + " · disk " + kb(b.disk_bytes) }),
      ]));
    }
  }

  function renderPartitions(parts) {
    const box = $("partitions"); box.replaceChildren();
    for (const p of parts) {
      const id = "partition-" + p.topic + "-" + p.partition;
      const head = el("div", { class: "partition-head", text:
        p.topic + "-" + p.partition + " · leader " + (p.leader < 0 ? "none (offline)" : p.leader) +
        " · epoch " + p.leader_epoch + " · ISR {" + p.isr.join(",") + "}" });
      const rows = [];
      for (const b of p.replicas) {
        const r = p.replica[String(b)];
        const role = b === p.leader ? "leader" : p.isr.includes(b) ? "in sync" : "out of sync";
        const label = el("span", { class: "replica-label", text: "b" + b + " " + role });
        if (!r) { rows.push(el("div", { class: "replica down" }, [label, el("span", { text: " broker down" })])); continue; }
        const strip = el("span", { class: "strip" });
        for (const [offset, hue] of r.cells) {
          const cls = ["cell"];
          if (offset >= r.high_watermark) cls.push("uncommitted");
          if (state.highlight.has(p.topic + "-" + p.partition + ":" + offset)) cls.push("highlight");
          for (const r of state.ranges) {
            if (r.partition === p.topic + "-" + p.partition && offset >= r.from && offset < r.to) cls.push(r.kind);
          }
          strip.appendChild(el("span", { class: cls.join(" "), title: "offset " + offset,
            "data-offset": String(offset), style: hue < 0 ? "" : "--hue:" + hue }));
        }
        const marks = el("span", { class: "marks", text: " start " + r.log_start_offset + " · HW " + r.high_watermark +
          " · LSO " + r.last_stable_offset + " · LEO " + r.log_end_offset });
        rows.push(el("div", { class: "replica " + role.replace(/ /g, "-") }, [label, strip, marks]));
      }
      const leaderView = p.replica[String(p.leader)];
      const hw = leaderView ? leaderView.high_watermark : null;
      const cursors = [];
      for (const [group, committed] of Object.entries(p.committed || {})) {
        const lag = hw == null ? 0 : Math.max(0, hw - committed);
        cursors.push(el("span", { class: "cursor committed", text: group + " committed " + committed + " (lag " + lag + ")" }),
          el("span", { class: "lagbar", style: "width:" + Math.min(200, lag) + "px" }));
      }
      for (const c of p.positions || []) cursors.push(el("span", { class: "cursor position", text: c.consumer + " at " + c.position }));
      box.appendChild(el("div", { id: id, class: "partition" }, [head].concat(rows, [el("div", { class: "cursors" }, cursors)])));
      if (leaderView) markCursors(id, p);
    }
  }

  function markCursors(id, p) {
    // the leader's strip: the group's committed offset and each member's position, as edges on the cells
    const strip = document.querySelector("[id='" + id + "'] .replica.leader .strip");
    if (!strip) return;
    for (const committed of Object.values(p.committed || {})) {
      const cell = strip.querySelector("[data-offset='" + (committed - 1) + "']");
      if (cell) cell.classList.add("committed-edge");
    }
    for (const c of p.positions || []) {
      const cell = strip.querySelector("[data-offset='" + (c.position - 1) + "']");
      if (cell) cell.classList.add("position-edge");
    }
  }

  // Each producer's producer id as last drawn, and when it last changed: frames come up to 10 times a second, so a
  // new id (after restart_producer) stays marked for PID_MARK_MS, long enough for a learner to notice.
  const PID_MARK_MS = 3000;
  let pidSeen = {};  // producer name → { pid, was, at }
  function pidMark(name, pid) {  // the previous id while the current one is new, else null
    const seen = pidSeen[name];
    if (!seen) { pidSeen[name] = { pid: pid, was: null, at: 0 }; return null; }
    if (pid != null && pid !== seen.pid) {  // a null id (a new instance waiting for InitProducerId) keeps the old one
      if (seen.pid != null) { seen.was = seen.pid; seen.at = Date.now(); }
      seen.pid = pid;
    }
    return seen.at && Date.now() - seen.at < PID_MARK_MS ? seen.was : null;
  }

  function renderProducers(producers) {
    const box = $("producers"); box.replaceChildren();
    for (const p of producers) {
      const st = p.state || (p.alive === false ? "crashed" : p.running ? "sending" : "stopped");
      const pid = p.pid == null ? null : p.pid;
      const was = pidMark(p.name, pid);
      box.appendChild(el("div", { id: "producer-" + p.name, class: "producer " + st + (st === "sending" ? "" : " stopped") }, [
        el("strong", { text: p.name }),
        el("span", { class: "producer-state " + st + (st === "crashed" ? " error" : ""), text: " " + st }),
        el("span", { class: "pid" + (was != null ? " pid-changed" : ""), id: "producer-pid-" + p.name,
          title: was != null ? "a new producer id: a new instance of this producer (the previous one's was " + was + ")" : "producer id (InitProducerId)",
          text: " · " + (pid != null ? "PID " + pid : p.enable_idempotence && st !== "crashed" ? "PID pending" : "no PID") +
            (was != null ? " (new, was " + was + ")" : "") }),
        el("span", { text: " · acks=" + p.acks + " · idempotent " + (p.enable_idempotence ? "yes" : "no") + " · " +
          p.rate_per_s + "/s · keys " + p.keys + (p.serializer ? " · " + p.serializer + (p.avg_value_bytes != null ?
          " (" + p.avg_value_bytes + " B/value)" : "") : "") + " · acked " + p.acked + " · failed " + p.failed +
          (p.last_error ? " · last error " + p.last_error : "") }),
      ]));
    }
  }

  function renderGroups(groups) {
    const box = $("groups"); box.replaceChildren();
    const lag = ((shown().metrics || {}).latest || {}).group_lag || {};
    for (const g of groups) {
      const stable = g.state === "Stable";  // mid-rebalance nobody has an assignment yet: that is not idle
      const members = g.members.map((m) => el("li", {
        class: m.assignment.length || !stable ? "member" : "member idle",
        text: m.client_id + (m.assignment.length ? " ← " + m.assignment.map((t) => t.split("-").pop()).join(", ")
          : stable ? " — idle: no partition left for it" : " — waiting for the rebalance") }));
      const glag = lag[g.group_id];
      box.appendChild(el("div", { id: "group-" + g.group_id, class: "group" }, [
        el("strong", { text: g.group_id }),
        el("span", { text: " · " + g.state + " · generation " + g.generation + " · " + (g.protocol || "–") +
          " · coordinator broker " + g.coordinator + (glag ? " · lag " + glag.lag_records + " records" : "") }),
        el("ul", {}, members),
      ]));
    }
  }

  function renderGuarantees(g) {
    const box = $("guarantees"); box.replaceChildren();
    if (g.valid) {
      box.appendChild(el("p", { class: "all-good", id: "guarantees-ok",
        text: "All guarantees hold: " + g.acked + " acknowledged, " + g.consumed + " consumed." }));
    }
    for (const a of g.anomalies) {
      const show = el("button", { type: "button", class: "link", text: "show records" });
      show.addEventListener("click", () => {
        state.highlight = new Set();
        for (const ex of a.examples) for (const o of ex.offsets) state.highlight.add(ex.partition + ":" + o);
        renderPartitions(shown().partitions || []);
        // The strips show only the newest offsets: open the first example in the log explorer too.
        const ex = a.examples.find((e) => e.offsets.length);
        const part = ex && (shown().partitions || []).find((p) => p.topic + "-" + p.partition === ex.partition);
        if (ex && part && part.leader >= 0 && root.dataset.explore && window.htmx) {
          const q = new URLSearchParams({ broker: part.leader, topic: part.topic, partition: part.partition,
            offset: Math.max(0, Math.min(...ex.offsets) - 3) });
          htmx.ajax("GET", root.dataset.explore + "?" + q.toString(), "#explorer");
        }
      });
      box.appendChild(el("div", { class: "anomaly", id: "anomaly-" + a.name }, [
        el("strong", { text: a.name + " × " + a.count }), el("p", { text: a.definition }),
        a.examples.length ? el("p", { class: "muted", text: a.examples[0].explanation }) : null, show,
      ]));
    }
    if (!g.checking) box.appendChild(el("p", { class: "muted", text: "Checking stopped: the history is full." }));
  }

  function spark(values, label) {
    const w = 160, h = 32, nums = values.map((v) => (v == null ? 0 : v));
    const max = Math.max(1, ...nums);
    const pts = nums.map((v, i) => (i * w / Math.max(1, nums.length - 1)).toFixed(1) + "," + (h - v * h / max).toFixed(1));
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 " + w + " " + h); svg.setAttribute("class", "spark");
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", pts.join(" ")); svg.appendChild(line);
    return el("div", { class: "spark-row" }, [el("span", { text: label + " (now " + Math.round(nums[nums.length - 1] || 0) + ")" }), svg]);
  }

  function renderMetrics(m) {
    const box = $("metrics"); box.replaceChildren();
    for (const [name, values] of Object.entries(m.sparks)) box.appendChild(spark(values, name.replace(/_/g, " ")));
    for (const a of (m.latest.alerts || [])) box.appendChild(el("p", { class: "error", text: a.text || JSON.stringify(a) }));
  }

  function renderRest(r) {  // the REST pipeline: a fleet posting synchronously to a slow service
    const box = $("rest"); if (!box) return; box.replaceChildren();
    const k = r.counters, d = r.downstream, c = r.caller;
    const ms = (v) => (v == null ? "–" : v + " ms");
    box.appendChild(el("p", { id: "rest-downstream", class: "rest " + d.state, text: "Downstream " + d.state + " · " +
      d.capacity_per_s + " requests/s (" + d.workers + " workers, " + d.service_ms + " ms each) · queue " +
      d.queue_depth + "/" + d.queue }));
    box.appendChild(el("p", { text: "Fleet " + c.rate_per_s + " readings/s · connections " + c.in_flight + "/" +
      c.max_in_flight + " · buffer " + c.buffered + "/" + c.buffer + " · timeout " + c.timeout_ms + " ms · retries " + c.retries }));
    box.appendChild(el("p", { id: "rest-counts", class: k.dropped ? "error" : "", text: "readings " + k.readings +
      " · ok " + k.ok + " · 503 " + k.rejected_503 + " · timed out " + k.timed_out + " · refused " + k.refused +
      " · retries " + k.retries + " · dropped " + k.dropped + " (buffer full " + k.dropped_buffer_full + ", gave up " +
      k.dropped_gave_up + ") · processed twice " + k.duplicates + " · latency p50 " + ms(k.latency_p50_ms) +
      " p99 " + ms(k.latency_p99_ms) }));
    const s = r.sparks;
    for (const name of ["ok_per_s", "dropped_per_s", "rejected_503_per_s", "timed_out_per_s", "queue_depth", "buffer_depth", "latency_p99_ms"])
      if (s[name]) box.appendChild(spark(s[name], name.replace(/_/g, " ")));
    if (s.utilisation) box.appendChild(spark(s.utilisation.map((v) => (v == null ? null : v * 100)), "utilisation %"));
  }

  function renderEvents(list) {
    const box = $("events"); box.replaceChildren();
    for (const e of (list || state.events).slice(-80).reverse()) {
      box.appendChild(el("li", { class: "event " + e.kind }, [el("time", { text: seconds(e.time_ms) }), el("span", { text: " " + e.text })]));
    }
  }

  function renderWireClients(clients) {  // real Kafka clients connected through the lab's listeners
    const box = $("wire-clients"); if (!box) return;
    box.replaceChildren();
    if (!clients.length) { box.appendChild(el("p", { class: "muted", text: "No real client is connected." })); return; }
    for (const c of clients) {
      const requests = Object.entries(c.requests).map(([api, n]) => api + " " + n).join(", ");
      box.appendChild(el("div", { class: "wire-client", id: "wire-client-" + c.client_id }, [
        el("strong", { text: c.client_id }),
        el("span", { text: " · " + c.roles.join(" + ") + " · " + c.connections + " connection(s) to broker " +
          c.brokers.join(", ") + (c.records_produced ? " · produced " + c.records_produced + " records" : "") +
          " · requests: " + (requests || "none yet") }),
      ]));
    }
  }

  const renderers = { brokers: renderBrokers, partitions: renderPartitions, producers: renderProducers,
    groups: renderGroups, guarantees: renderGuarantees, metrics: renderMetrics, rest: renderRest,
    wire_clients: renderWireClients };

  function apply(frame) {
    if (frame.type === "error") { $("command-result") && ($("command-result").textContent = frame.message); return; }
    if (frame.type !== "snapshot" && frame.type !== "delta") return;
    if (frame.type === "snapshot") { state.sections = {}; state.events = []; }
    Object.assign(state.sections, frame.sections);
    state.events = state.events.concat(frame.events || []).slice(-200);
    if ("time_ms" in frame.sections) timelineNow(frame.sections.time_ms);
    if (viewing) {  // a past moment is on screen: keep the live data, draw it on "Back to live"
      $("run-state").textContent = "live lab " + (frame.paused ? "paused" : "running") + " at " + seconds(state.sections.time_ms || 0);
      return;
    }
    for (const [name, render] of Object.entries(renderers)) if (name in frame.sections) render(frame.sections[name]);
    if ("metrics" in frame.sections && state.sections.groups) renderGroups(state.sections.groups);
    if ((frame.events || []).length || frame.type === "snapshot") renderEvents();
    if ("time_ms" in frame.sections) $("sim-time").textContent = seconds(frame.sections.time_ms);
    $("run-state").textContent = (frame.paused ? "paused" : "running") + " at " + frame.speed + "×" +
      (frame.behind ? " (the engine cannot keep up; running slower)" : "");
    for (const n of frame.notices || []) {
      const box = $("command-result");
      if (box) box.textContent = n.error ? n.kind + ": " + n.error : (n.result && n.result.explanation) || n.kind + " done";
    }
  }

  // An offset-reset preview arrives as an htmx partial carrying its ranges: outline those records.
  document.body.addEventListener("htmx:afterSwap", (evt) => {
    if (evt.target && evt.target.id === "explorer") {  // outline the records an anomaly named
      const table = document.getElementById("explorer-table");
      for (const key of state.highlight) {
        const [partition, offset] = [key.slice(0, key.lastIndexOf(":")), key.slice(key.lastIndexOf(":") + 1)];
        const row = document.getElementById("record-" + offset);
        if (row && table && table.dataset.partition === partition) row.classList.add("highlight");
      }
      return;
    }
    const data = document.getElementById("reset-highlight");
    state.ranges = data ? JSON.parse(data.textContent) : [];
    if (shown().partitions) renderPartitions(shown().partitions);
  });

  // ── the timeline: scrub back to a moment (rebuilt on the server), fork from there ──
  const tl = $("timeline");
  const range = $("timeline-range");
  let commands = [];
  function drawTicks() {
    const box = $("timeline-ticks"); if (!box || !range) return;
    box.replaceChildren();
    const max = Number(range.max) || 1;
    for (const c of commands) {
      box.appendChild(el("span", { class: "tick " + c.kind, title: seconds(c.at_ms) + " " + c.kind,
        "data-at-ms": String(c.at_ms), style: "left:" + Math.min(100, 100 * c.at_ms / max).toFixed(2) + "%" }));
    }
  }
  function loadTimeline() {
    if (!tl) return;
    fetch(tl.dataset.url, { credentials: "same-origin" }).then((r) => (r.ok ? r.json() : null)).then((t) => {
      if (!t) return;
      commands = t.commands || [];
      timelineNow(t.now_ms);
      drawTicks();
    }).catch(() => {});
  }
  function timelineNow(ms) {
    if (!range) return;
    const follow = !viewing;
    range.max = String(ms);
    if (follow) { range.value = String(ms); $("timeline-at").textContent = "live · " + seconds(ms); }
    drawTicks();
  }
  function renderView(view) {  // a whole view (the rebuilt moment, or the live sections) into the same sections
    pidSeen = {};  // another moment's producer ids are not a restart: mark none of them as new
    for (const [name, render] of Object.entries(renderers)) if (name in view) render(view[name]);
    if (!("rest" in view) && $("rest")) $("rest").replaceChildren(el("p", { class: "muted", text: "No REST pipeline in this lab yet." }));
    if ("time_ms" in view) $("sim-time").textContent = seconds(view.time_ms);
  }
  function showMoment(atMs) {
    const result = $("timeline-result");
    $("timeline-at").textContent = "rebuilding " + seconds(atMs) + "…";
    fetch(tl.dataset.rewind + "?at_ms=" + encodeURIComponent(atMs), { credentials: "same-origin" }).then((r) =>
      r.ok ? r.json() : r.text().then((t) => { throw new Error(t); })).then((view) => {
      viewing = { at_ms: atMs, view: view };
      renderView(view);
      renderEvents(view.events || []);
      document.body.classList.add("viewing-past");
      $("viewing-banner").hidden = false;
      $("viewing-at").textContent = seconds(view.time_ms);
      $("fork-at").value = String(atMs);
      const how = view.rewind || {};
      $("viewing-how").textContent = "(rebuilt in " + (how.cached ? "cache" : how.seconds + " s") + " from " +
        (how.from_checkpoint_ms == null ? "the start — no checkpoint yet" : "the checkpoint at " + seconds(how.from_checkpoint_ms)) +
        " + " + how.replayed_commands + " commands)";
      $("timeline-at").textContent = "viewing " + seconds(view.time_ms);
      result.replaceChildren();
    }).catch((err) => {
      // the server's error partial: shown as text, never parsed as HTML
      const doc = new DOMParser().parseFromString(String(err.message || err), "text/html");
      result.replaceChildren(el("p", { class: "error", role: "alert", text: doc.body.textContent.trim() || "could not rebuild that moment" }));
      $("timeline-at").textContent = viewing ? "viewing " + seconds(viewing.at_ms) : "live";
    });
  }
  function backToLive() {
    viewing = null;
    document.body.classList.remove("viewing-past");
    $("viewing-banner").hidden = true;
    renderView(state.sections);
    renderEvents();
    timelineNow(state.sections.time_ms || 0);
  }
  if (tl && range) {
    range.addEventListener("input", () => { $("timeline-at").textContent = "→ " + seconds(Number(range.value)); });
    range.addEventListener("change", () => {
      const at = Number(range.value);
      if (at >= Number(range.max) && !viewing) return;
      showMoment(at);
    });
    $("back-to-live").addEventListener("click", backToLive);
    document.body.addEventListener("htmx:afterRequest", (evt) => {  // a new command: a new tick
      if (evt.detail && evt.detail.elt && evt.detail.elt.closest && evt.detail.elt.closest(".controls")) loadTimeline();
    });
    document.body.addEventListener("htmx:beforeSwap", (evt) => {  // a refused fork: show the server's reason
      const d = evt.detail;
      if (d.target && d.target.id === "timeline-result" && d.xhr && d.xhr.status >= 400 && d.xhr.status < 500) {
        d.shouldSwap = true; d.isError = false;
      }
    });
    loadTimeline();  // again after each command from the controls (above); the range follows the frames
    window.labTimeline = { showMoment: showMoment, backToLive: backToLive };  // for tests and the console
  }

  let retry = 500;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + root.dataset.ws);
    ws.onopen = () => { retry = 500; };
    ws.onmessage = (msg) => {
      const frame = JSON.parse(msg.data);
      apply(frame);
      document.dispatchEvent(new CustomEvent("lab:frame", { detail: frame }));  // for the guide panel
    };
    ws.onclose = () => { $("run-state").textContent = "disconnected; reconnecting…"; setTimeout(connect, retry); retry = Math.min(retry * 2, 8000); };
  }
  connect();
})();
