// The events-per-second chart for the last hour (uPlot, vendored). Two
// series on one time axis, one point per second:
//   - the server's per-minute counters (GET /metrics `series`, by event
//     timestamp, all events) as an average rate: a minute's count / 60, the
//     current minute's count / the seconds elapsed in it;
//   - the events this page received per second (by arrival, the filtered
//     stream), from the moment it opened.

import uPlot from './uPlot.esm.js';

const HOUR = 3600;

export class RateChart {
  constructor(el) {
    this.el = el;
    this.minutes = new Map(); // minute start (s) → count
    this.live = new Map(); // second (s) → count
    this.openedAt = nowSec();
    this.updates = 0;
    const css = getComputedStyle(document.documentElement);
    const color = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
    const axis = {
      stroke: color('--muted', '#aab'),
      grid: { stroke: color('--grid', '#333'), width: 1 },
      ticks: { stroke: color('--grid', '#333'), width: 1 },
    };
    const stepped = uPlot.paths.stepped({ align: 1 });
    this.u = new uPlot({
      width: Math.max(el.clientWidth, 200),
      height: chartHeight(),
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [axis, { ...axis, label: 'events / s', size: 56 }],
      legend: { live: true },
      series: [
        { label: 'time' },
        {
          label: 'received here /s',
          stroke: color('--live', '#4aa3ff'),
          fill: color('--live-fill', 'rgba(74,163,255,.25)'),
          width: 1,
          paths: stepped,
          points: { show: false },
          value: (u, v) => (v == null ? '–' : v.toFixed(0)),
        },
        {
          label: 'all events, per-minute avg /s',
          stroke: color('--avg', '#f5a623'),
          width: 2,
          paths: stepped,
          points: { show: false },
          value: (u, v) => (v == null ? '–' : v.toFixed(2)),
        },
      ],
    }, this.data(), el);
    new ResizeObserver(() => {
      const w = el.clientWidth;
      if (w > 0 && (w !== this.u.width || chartHeight() !== this.u.height)) {
        this.u.setSize({ width: w, height: chartHeight() });
      }
    }).observe(el);
  }

  /** Takes the per-minute series of a metrics payload. */
  setSeries(series) {
    if (!Array.isArray(series)) return;
    this.minutes.clear();
    for (const p of series) this.minutes.set(Math.floor(p.minute / 1000), Number(p.total) || 0);
  }

  /** Counts one event received now. */
  count() {
    const s = nowSec();
    this.live.set(s, (this.live.get(s) || 0) + 1);
  }

  /** Redraws the last hour up to now. */
  tick() {
    const now = nowSec();
    for (const s of this.live.keys()) if (s <= now - HOUR) this.live.delete(s);
    this.u.setData(this.data(now));
    // Away from the cursor, the legend shows the last complete second.
    if (!(this.u.cursor.left >= 0)) this.u.setLegend({ idx: HOUR - 2 });
    this.updates++;
    let avgSum = 0;
    for (const n of this.minutes.values()) avgSum += n;
    let liveSum = 0;
    for (const n of this.live.values()) liveSum += n;
    const lastLive = this.live.get(now - 1) || 0;
    Object.assign(this.el.dataset, { updates: String(this.updates), liveSum: String(liveSum), minuteSum: String(avgSum) });
    this.el.setAttribute('aria-label',
      `Events per second over the last hour: ${lastLive} received in the last second; ` +
      `${avgSum} events counted by the server in the last hour.`);
  }

  data(now = nowSec()) {
    const n = HOUR;
    const xs = new Array(n), live = new Array(n), avg = new Array(n);
    const thisMinute = now - (now % 60);
    for (let i = 0; i < n; i++) {
      const s = now - n + 1 + i;
      xs[i] = s;
      live[i] = s >= this.openedAt ? (this.live.get(s) || 0) : null;
      const m = s - (s % 60);
      const c = this.minutes.get(m);
      if (c === undefined) avg[i] = this.minutes.size ? 0 : null;
      else avg[i] = m === thisMinute ? c / Math.max(1, now - m + 1) : c / 60;
    }
    return [xs, live, avg];
  }
}

function nowSec() {
  return Math.floor(Date.now() / 1000);
}

function chartHeight() {
  return window.matchMedia('(max-width: 700px)').matches ? 180 : 200;
}
