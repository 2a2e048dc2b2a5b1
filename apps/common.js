// Helpers shared by the demo apps: a client for this server, a connection-state badge, and the
// position of a topic's recent history (so a page can show what was said before it joined).
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
 * Where to start a subscription to see up to `count` earlier publications: `{epoch, offset}`,
 * from the server's `/api/topics/<topic>` (undefined if it cannot say).
 */
export async function recentPosition(topic, count) {
  try {
    const token = new URLSearchParams(location.search).get('token');
    const response = await fetch(`/api/topics/${encodeURIComponent(topic)}`, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
    if (!response.ok) return undefined;
    const { epoch, offset, first } = await response.json();
    return { epoch, offset: Math.max(first - 1, offset - count, 0) };
  } catch {
    return undefined;
  }
}

/** `12:04:05` for a timestamp. */
export function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
