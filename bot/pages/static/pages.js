/* FieldLens pages: charts (uPlot), the live job stream and the predictions slider.
   Everything here enhances a page that already reads without JavaScript. No build step. */
(function () {
  "use strict";
  const dataEl = document.getElementById("page-data");
  if (!dataEl || typeof uPlot === "undefined") return;
  const page = JSON.parse(dataEl.textContent);
  // The colours of drawing/boxes.py, so a label looks the same in pictures and charts.
  const PALETTE = ["#e6194b", "#3cb44b", "#ffe119", "#0082c8", "#f58230", "#911eb4",
    "#46f0f0", "#f032e6", "#d2f53c", "#fabed4", "#008080", "#aa6e28"];

  function duration(seconds) {
    if (typeof seconds !== "number") return "--";
    const s = Math.floor(seconds);
    const pad = (n) => String(n).padStart(2, "0");
    return `${Math.floor(s / 3600)}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
  }

  /* A chart whose x values are steps (or recall); `columns` maps x -> [y per series]. */
  class Chart {
    constructor(el, xLabel, yLabel, names, colours, options) {
      this.el = el;
      this.columns = new Map();
      this.width = names.length;
      const series = [{ label: xLabel }].concat(names.map((name, i) => ({
        label: name, stroke: colours[i % colours.length], width: 2, spanGaps: true,
        points: { show: options.points !== false },
      })));
      this.plot = new uPlot({
        width: el.clientWidth || 320, height: options.height || 220,
        scales: { x: { time: false }, y: options.y || {} },
        axes: [{ label: xLabel }, { label: yLabel }],
        series: series,
      }, [[]].concat(names.map(() => [])), el);
      window.addEventListener("resize", () => this.plot.setSize({ width: el.clientWidth, height: options.height || 220 }));
    }
    put(x, index, y) {
      if (typeof x !== "number" || typeof y !== "number" || !isFinite(y)) return;
      const row = this.columns.get(x) || new Array(this.width).fill(null);
      row[index] = y;
      this.columns.set(x, row);
    }
    draw() {
      const xs = Array.from(this.columns.keys()).sort((a, b) => a - b);
      const data = [xs];
      for (let i = 0; i < this.width; i++) data.push(xs.map((x) => this.columns.get(x)[i]));
      this.plot.setData(data);
      this.el.dataset.points = String(xs.length);
    }
  }

  function prChart() {
    const el = document.getElementById("pr-chart");
    const labels = Object.keys(page.curves || {});
    if (!el || !labels.length) return;
    const chart = new Chart(el, "recall", "precision", labels, PALETTE, { points: false, y: { range: [0, 1] } });
    labels.forEach((label, i) => {
      const c = page.curves[label];
      c.recall.forEach((r, k) => chart.put(r, i, c.precision[k]));
    });
    chart.draw();
  }

  function jobPage() {
    const lossEl = document.getElementById("loss-chart");
    if (!lossEl) return;
    const labels = page.labels || [];
    const loss = new Chart(lossEl, "step", "loss", ["training", "validation"], ["#1f6feb", "#c62828"],
      { y: { distr: 3 } });
    const maps = new Chart(document.getElementById("map-chart"), "step", "mAP",
      ["mAP@0.5", "mAP@0.5:0.95"], ["#1a7f37", "#8250df"], { y: { range: [0, 1] } });
    const ap = new Chart(document.getElementById("ap-chart"), "step", "AP@0.5", labels, PALETTE,
      { y: { range: [0, 1] } });
    const slider = document.getElementById("sample-slider");
    const image = document.getElementById("sample-image");
    const stepOut = document.getElementById("sample-step");
    const samples = [];

    function showSample(i) {
      const s = samples[i];
      if (!s) return;
      image.src = s.url;
      stepOut.textContent = String(s.step);
    }
    slider.addEventListener("input", () => showSample(Number(slider.value)));

    function addSample(step, url) {
      if (!url || samples.some((s) => s.step === step)) return;
      const atEnd = Number(slider.value) >= samples.length - 1;
      samples.push({ step: step, url: url });
      samples.sort((a, b) => a.step - b.step);
      slider.max = String(samples.length - 1);
      document.getElementById("samples").hidden = false;
      const none = document.getElementById("no-samples");
      if (none) none.hidden = true;
      if (atEnd) { slider.value = slider.max; showSample(samples.length - 1); }
    }

    function addCheckpointRow(e) {
      const table = document.getElementById("checkpoint-table");
      if (!table) return;
      const f = (v) => (typeof v === "number" ? v.toFixed(3) : "--");
      const row = table.tBodies[0].insertRow();
      [String(e.step), f(e.map50), f(e.map50_95), f(e.loss), f(e.val_loss)].forEach((t) => { row.insertCell().textContent = t; });
    }

    function take(e, live) {
      if (e.kind === "progress") {
        loss.put(e.step, 0, e.loss);
      } else if (e.kind === "checkpoint") {
        loss.put(e.step, 1, e.val_loss);
        maps.put(e.step, 0, e.map50);
        maps.put(e.step, 1, e.map50_95);
        labels.forEach((label, i) => ap.put(e.step, i, (e.ap || {})[label]));
        addSample(e.step, e.sample);
        if (live) addCheckpointRow(e);
      }
    }

    function header(job) {
      const state = document.getElementById("state");
      state.textContent = job.state;
      state.className = "state state-" + job.state.toLowerCase();
      const bar = document.getElementById("progress");
      bar.max = job.steps;
      bar.value = job.step;
      document.getElementById("steps-done").textContent = String(job.step);
      document.getElementById("eta").textContent = job.final ? "--" : duration(job.eta_seconds);
      document.getElementById("training-time").textContent = duration(job.training_seconds);
      if (typeof job.images_per_second === "number") {
        document.getElementById("speed").textContent = job.images_per_second.toFixed(1) + " images/s";
      }
      if (job.final) document.getElementById("ended").hidden = false;
    }

    const logEl = document.getElementById("log");
    function addLog(lines) {
      if (!logEl || !lines.length) return;
      const follow = logEl.scrollTop + logEl.clientHeight >= logEl.scrollHeight - 4;
      const kept = (logEl.textContent ? logEl.textContent.split("\n") : []).concat(lines)
        .slice(-(page.log_lines || 1000));
      logEl.textContent = kept.join("\n");
      document.getElementById("log-count").textContent = String(kept.length);
      document.getElementById("log-part").hidden = false;
      document.getElementById("log-none").hidden = true;
      if (follow) logEl.scrollTop = logEl.scrollHeight;
    }

    page.events.forEach((e) => take(e, false));
    [loss, maps, ap].forEach((c) => c.draw());
    if (page.final) return;
    // The stream resumes where this page is: after its last event, at its place in the log. On an
    // error it is opened again from there (EventSource's own retry would repeat the log).
    let after = page.after || 0;
    let logAt = page.log_at || 0;
    function connect() {
      const url = new URL(page.stream, window.location.href);
      url.searchParams.set("after", String(after));
      url.searchParams.set("log", String(logAt));
      const stream = new EventSource(url.toString());
      stream.addEventListener("job", (message) => {
        const payload = JSON.parse(message.data);
        after = Math.max(after, payload.event.id);
        take(payload.event, true);
        [loss, maps, ap].forEach((c) => c.draw());
        header(payload.job);
      });
      stream.addEventListener("log", (message) => {
        const payload = JSON.parse(message.data);
        logAt = payload.at;
        addLog(payload.lines);
      });
      stream.addEventListener("end", () => stream.close());
      stream.onerror = () => {
        stream.close();
        window.setTimeout(connect, 3000);
      };
    }
    connect();
  }

  jobPage();
  prChart();
})();
