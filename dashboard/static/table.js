// The live events table: newest (highest seq) first, at most `cap` rows,
// one row per seq. Rows are added in batches (at most every FLUSH_MS), so a
// burst of events costs one DOM update. Keyboard: the table body holds one
// tab stop (roving tabindex); arrows, Home/End and PageUp/PageDown move it,
// Enter or Space shows the event's JSON in a dialog, Esc closes it.

const FLUSH_MS = 50;
const PAGE = 10;

export class EventsTable {
  constructor({ tbody, empty, note, dialog, dialogJSON, dialogTitle, cap = 500 }) {
    Object.assign(this, { tbody, empty, note, dialog, dialogJSON, dialogTitle, cap });
    this.rows = []; // {seq, ev, tr}, seq descending
    this.bySeq = new Map();
    this.queue = [];
    this.timer = 0;
    this.paused = false;
    this.pausedNew = 0; // events that arrived while paused
    this.lastFocused = null;
    this.pressed = null; // the row Enter or Space went down on
    tbody.addEventListener('keydown', (e) => this.key(e));
    // Enter and Space open the row on keyup, as a button acts on Space: on
    // keydown the dialog would take focus and its Close button would get
    // the rest of the same key press and close it again.
    tbody.addEventListener('keyup', (e) => {
      const tr = e.target.closest('tr');
      if (tr && (e.key === 'Enter' || e.key === ' ') && this.pressed === tr) this.open(tr);
      this.pressed = null;
    });
    tbody.addEventListener('click', (e) => {
      const tr = e.target.closest('tr');
      if (tr) { this.focus(tr); this.open(tr); }
    });
    tbody.addEventListener('focusin', (e) => {
      const tr = e.target.closest('tr');
      if (tr) this.setTabStop(tr);
    });
    // The close event comes a task after the dialog closed, and the browser
    // may already have put focus back on the row: a key pressed meanwhile
    // (Esc then ArrowDown) has moved it on, and taking it back would undo
    // that. Only a focus left outside the table is brought back.
    dialog.addEventListener('close', () => {
      if (this.tbody.contains(document.activeElement)) return;
      if (this.lastFocused && this.lastFocused.isConnected) this.lastFocused.focus();
    });
  }

  /** Removes every row and anything queued. */
  clear() {
    this.queue = [];
    this.rows = [];
    this.bySeq.clear();
    this.pausedNew = 0;
    this.tbody.replaceChildren();
    this.updateNote();
  }

  /** Queues events (any order; duplicates by seq are ignored). */
  add(events) {
    for (const ev of events) this.queue.push(ev);
    if (this.paused) {
      this.pausedNew += events.length;
      this.queue = newest(this.queue, this.cap);
      this.updateNote();
      return;
    }
    if (!this.timer) this.timer = setTimeout(() => this.flush(), FLUSH_MS);
  }

  setPaused(p) {
    this.paused = p;
    if (!p) {
      this.pausedNew = 0;
      this.flush();
    }
    this.updateNote();
  }

  flush() {
    clearTimeout(this.timer);
    this.timer = 0;
    if (this.paused || this.queue.length === 0) return;
    const fresh = [];
    const seen = new Set();
    for (const ev of newest(this.queue, this.cap)) {
      if (this.bySeq.has(ev.seq) || seen.has(ev.seq)) continue;
      seen.add(ev.seq);
      fresh.push(ev);
    }
    this.queue = [];
    if (fresh.length === 0) return;
    const top = this.rows.length ? this.rows[0].seq : -1;
    const entries = fresh.map((ev) => ({ seq: ev.seq, ev, tr: row(ev) }));
    for (const e of entries) this.bySeq.set(e.seq, e);
    if (entries[entries.length - 1].seq > top) {
      // The usual case: everything is newer than the top row.
      const frag = document.createDocumentFragment();
      for (const e of entries) frag.append(e.tr);
      this.tbody.prepend(frag);
      this.rows = entries.concat(this.rows);
    } else {
      this.rows = this.rows.concat(entries).sort((a, b) => b.seq - a.seq);
      this.tbody.replaceChildren(...this.rows.map((e) => e.tr));
    }
    for (const e of this.rows.splice(this.cap)) {
      this.bySeq.delete(e.seq);
      e.tr.remove();
    }
    if (!this.tbody.querySelector('tr[tabindex="0"]') && this.rows.length) {
      this.rows[0].tr.tabIndex = 0;
    }
    this.updateNote();
  }

  updateNote() {
    this.empty.hidden = this.rows.length > 0;
    let text = `${this.rows.length} rows`;
    if (this.rows.length >= this.cap) text += ` (newest ${this.cap})`;
    if (this.paused) text += ` · paused, ${this.pausedNew} new`;
    this.note.textContent = text;
  }

  /** The seqs shown, top to bottom. */
  seqs() {
    return this.rows.map((e) => e.seq);
  }

  setTabStop(tr) {
    const cur = this.tbody.querySelector('tr[tabindex="0"]');
    if (cur && cur !== tr) cur.tabIndex = -1;
    tr.tabIndex = 0;
  }

  focus(tr) {
    this.setTabStop(tr);
    tr.focus();
  }

  key(e) {
    const tr = e.target.closest('tr');
    if (!tr) return;
    const rows = this.tbody.rows;
    const i = tr.sectionRowIndex;
    let next = -1;
    switch (e.key) {
      case 'ArrowDown': case 'j': next = Math.min(i + 1, rows.length - 1); break;
      case 'ArrowUp': case 'k': next = Math.max(i - 1, 0); break;
      case 'Home': next = 0; break;
      case 'End': next = rows.length - 1; break;
      case 'PageDown': next = Math.min(i + PAGE, rows.length - 1); break;
      case 'PageUp': next = Math.max(i - PAGE, 0); break;
      case 'Enter': case ' ': e.preventDefault(); this.pressed = tr; return;
      default: return;
    }
    e.preventDefault();
    this.focus(rows[next]);
  }

  open(tr) {
    const entry = this.bySeq.get(Number(tr.dataset.seq));
    if (!entry) return;
    this.lastFocused = tr;
    this.dialogTitle.textContent = `Event ${entry.ev.eventType} · seq ${entry.seq}`;
    this.dialogJSON.textContent = JSON.stringify(entry.ev, null, 2);
    if (!this.dialog.open) this.dialog.showModal();
  }
}

/** The n highest-seq events of list, highest first. */
function newest(list, n) {
  const sorted = list.slice().sort((a, b) => b.seq - a.seq);
  return sorted.length > n ? sorted.slice(0, n) : sorted;
}

function row(ev) {
  const tr = document.createElement('tr');
  tr.dataset.seq = String(ev.seq);
  tr.dataset.type = ev.eventType || '';
  tr.tabIndex = -1;
  tr.className = 'fresh';
  const ts = Number(ev.timestamp);
  const when = Number.isFinite(ts) ? new Date(ts) : null;
  tr.append(
    cell(String(ev.seq), 'num'),
    cell(when ? clock(when) : '', 'time', when ? when.toISOString() : ''),
    cell(ev.eventType || '', 'type'),
    cell(ev.userId || '', 'user'),
    cell(ev.id || '', 'col-id', ev.id || ''),
  );
  return tr;
}

function cell(text, cls, title) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  if (title) td.title = title;
  return td;
}

function clock(d) {
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}
