// The live stream (docs/stream.md) with reconnects: one WebSocket, one subscription per
// topic, resume from the last seq seen per topic (`since`), exponential backoff (capped,
// jittered); after repeated failures it polls `GET /api/v1/stream/recent` with the same
// cursors until the WebSocket is back. Messages reach handlers once, in seq order.
import { api, auth, streamUrl } from "./api.js";

export const STATES = ["connecting", "live", "reconnecting", "polling", "offline"];

export class Stream extends EventTarget {
  constructor({ retryBaseMs = 500, retryMaxMs = 10000, failuresBeforePolling = 3,
                pollMs = 5000, silenceMs = 45000 } = {}) {
    super();
    Object.assign(this, { retryBaseMs, retryMaxMs, failuresBeforePolling, pollMs, silenceMs });
    this.topics = new Map(); // topic -> {filter, handler, seq}
    this.state = "connecting";
    this.failures = 0;
    this.ws = null;
    this.nextRetryAt = null;
    this.lastMessageAt = 0;
    this.stopped = true;
  }

  /** Subscribe `topic` with `filter`; `handler(message)` also gets `gap` and `reset` messages. */
  subscribe(topic, filter, handler) {
    const known = this.topics.get(topic);
    this.topics.set(topic, { filter: filter || {}, handler, seq: known ? known.seq : null });
    if (known && JSON.stringify(known.filter) !== JSON.stringify(filter || {})) this.topics.get(topic).seq = null;
    this._send({ op: "subscribe", topic, ...(filter || {}) , ...this._since(topic) });
  }

  unsubscribe(topic) {
    if (this.topics.delete(topic)) this._send({ op: "unsubscribe", topic });
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this._onOnline = () => { this.failures = Math.min(this.failures, 1); this._connectSoon(0); };
    this._onOffline = () => { if (this.state !== "live") this._setState("offline"); };
    addEventListener("online", this._onOnline);
    addEventListener("offline", this._onOffline);
    this._watchdog = setInterval(() => this._checkSilence(), 5000);
    this._connect();
  }

  stop() {
    this.stopped = true;
    removeEventListener("online", this._onOnline);
    removeEventListener("offline", this._onOffline);
    clearInterval(this._watchdog);
    clearTimeout(this._retryTimer);
    this._stopPolling();
    if (this.ws) { this.ws.onclose = null; this.ws.close(); this.ws = null; }
  }

  /** Reconnect now (after a new token, say). */
  restart() {
    this.failures = 0;
    if (this.ws) this.ws.close(); else this._connectSoon(0);
  }

  _since(topic) {
    const t = this.topics.get(topic);
    return t && t.seq != null ? { since: t.seq } : {};
  }

  _send(body) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(body));
  }

  _setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state } }));
  }

  _connect() {
    if (this.stopped || this.ws) return;
    let ws;
    try { ws = new WebSocket(streamUrl()); } catch { this._failed(); return; }
    this.ws = ws;
    let heard = false;
    ws.onopen = () => {
      for (const [topic, t] of this.topics) ws.send(JSON.stringify({ op: "subscribe", topic, ...t.filter, ...this._since(topic) }));
    };
    ws.onmessage = (ev) => {
      if (!heard) { heard = true; this.failures = 0; this._stopPolling(); this._setState("live"); }
      this.lastMessageAt = Date.now();
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      this._receive(msg);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (ev.code === 4401) auth.dispatchEvent(new Event("unauthorized"));
      if (heard) this.failures = 0;
      this._failed();
    };
    ws.onerror = () => { /* onclose follows and decides */ };
  }

  _failed() {
    this.failures += 1;
    if (this.stopped) return;
    const delay = this._backoff(this.failures);
    if (this.failures >= this.failuresBeforePolling) this._startPolling();
    else this._setState(navigator.onLine === false ? "offline" : "reconnecting");
    this._connectSoon(delay);
  }

  _backoff(failures) {
    const ceiling = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** (failures - 1));
    return ceiling / 2 + Math.random() * ceiling / 2;
  }

  _connectSoon(delayMs) {
    clearTimeout(this._retryTimer);
    this.nextRetryAt = Date.now() + delayMs;
    this._retryTimer = setTimeout(() => { this.nextRetryAt = null; this._connect(); }, delayMs);
  }

  _checkSilence() {
    // Heartbeats come every 15 s by default; a connection silent for longer is dead.
    if (this.ws && this.state === "live" && Date.now() - this.lastMessageAt > this.silenceMs) this.ws.close();
  }

  _receive(msg) {
    if (msg.type === "subscribed" || msg.type === "unsubscribed") {
      const t = this.topics.get(msg.topic);
      if (t && t.seq == null && msg.type === "subscribed") t.seq = msg.seq;
      return;
    }
    if (msg.type === "heartbeat" || msg.type === "pong") return;
    if (msg.type === "error") { console.warn("seismo stream:", msg.error, msg.field || ""); return; }
    const t = this.topics.get(msg.topic);
    if (!t) return;
    if (msg.type === "gap") {
      // restart: the server's seqs start again; expired/slow_client: some are lost for good.
      t.seq = msg.reason === "restart" ? 0 : Math.max(t.seq ?? 0, msg.to_seq ?? msg.seq ?? 0);
      t.handler({ ...msg, type: "gap" });
      return;
    }
    if (msg.seq != null && t.seq != null && msg.seq <= t.seq) return; // seen (poll overlap)
    if (msg.seq != null) t.seq = msg.seq;
    t.handler(msg);
  }

  // -- polling fallback ---------------------------------------------------------------

  _startPolling() {
    if (this._pollTimer) return;
    const tick = async () => {
      if (this.ws && this.state === "live") return;
      const ok = await this._pollOnce();
      if (this.state !== "live") this._setState(ok ? "polling" : "offline");
    };
    this._pollTimer = setInterval(tick, this.pollMs);
    tick();
  }

  _stopPolling() {
    clearInterval(this._pollTimer);
    this._pollTimer = null;
  }

  async _pollOnce() {
    let ok = true;
    for (const [topic, t] of [...this.topics]) {
      try {
        const params = { topic, limit: t.seq == null ? (topic === "stats" ? 1 : 100) : 500, ...t.filter };
        if (t.seq != null) params.since = t.seq;
        const reply = await api("stream/recent", { params });
        if (this.state === "live" || this.topics.get(topic) !== t) continue; // the WebSocket took over
        if (reply.gap) {
          t.seq = reply.gap.reason === "restart" ? 0 : t.seq;
          t.handler({ type: "gap", topic, seq: reply.seq, reason: reply.gap.reason,
                      from_seq: reply.gap.from_seq, to_seq: reply.gap.to_seq });
        }
        for (const msg of reply.messages) this._receive(msg);
        t.seq = Math.max(t.seq ?? 0, reply.cursor);
      } catch (err) {
        ok = false;
        if (err.status === 0) break; // unreachable: no point asking about the other topics
      }
    }
    return ok;
  }
}
