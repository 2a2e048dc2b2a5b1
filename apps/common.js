// Helpers shared by the demo apps: a client for this server, a connection-state badge, and a
// topic's recent history (so a page can show what was said before it joined).
import { DuplexClient } from '/duplex/client.js';

/** A client for this server's hub at /ws; `params` go in the URL (e.g. a display name). */
export function connect(params = {}) {
  const token = new URLSearchParams(location.search).get('token') ?? undefined;
  const client = new DuplexClient('/ws', { params, token });
  // Handy in the devtools console: `duplex.publish('chat:lobby', { text: 'hi' })`.
  window.duplex = client;
  return client;
}

/** Keep `element` showing the client's connection state. */
export function showState(client, element) {
  const render = (state) => {
    const offline = state === 'reconnecting' && navigator.onLine === false;
    element.textContent = offline ? 'offline' : state;
    element.className = `state ${state}`;
    element.dataset.state = state;
  };
  render(client.state);
  client.on('state', render);
  addEventListener('offline', () => render(client.state));
}

/**
 * Show up to `count` earlier publications of `topic`, then subscribe from where they end: the
 * history comes from the server's `duplex.history` RPC (`{publications, epoch, offset}`), each
 * publication goes to `listener` as if recovered, and the subscription continues after the
 * topic's position, so nothing published meanwhile is missed or shown twice. Without the RPC
 * (an older server, or a refusal) it subscribes from now. Resolves with how many were shown.
 */
export async function subscribeWithHistory(client, topic, count, listener, options = {}) {
  let recent;
  try {
    recent = await client.rpc('duplex.history', { topic, limit: count });
  } catch (error) {
    console.warn('duplex.history', error.message);
  }
  for (const p of recent?.publications ?? []) listener(p.data, { topic, offset: p.offset, epoch: recent.epoch, recovered: true });
  await client.subscribe(topic, listener, recent ? { ...options, from: { epoch: recent.epoch, offset: recent.offset } } : options);
  return recent?.publications.length ?? 0;
}

/** `12:04:05` for a timestamp. */
export function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
