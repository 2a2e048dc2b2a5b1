// The chat demo: one topic per room (`chat:<room>`, with history) for messages and presence, and
// one (`typing:<room>`, no history: the server keeps none for `typing:` topics) for typing
// indicators. The client resubscribes after a dropped connection from the last offset it saw,
// so messages sent meanwhile arrive on return, in order, exactly once.
import { clock, connect, showState, subscribeWithHistory } from '/common.js';

const $ = (id) => document.getElementById(id);
const HISTORY = 50;
const TYPING_EVERY = 2000;
const TYPING_SHOWN = 3500;

const query = new URLSearchParams(location.search);
// Who "I" am across reconnections (connection ids change): one id per tab.
const me = sessionStorage.getItem('duplex-chat-me') ?? crypto.randomUUID();
sessionStorage.setItem('duplex-chat-me', me);
$('name').value = query.get('name') ?? localStorage.getItem('duplex-chat-name') ?? '';
$('room').value = query.get('room') ?? 'lobby';

$('join-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const name = $('name').value.trim();
  const room = $('room').value.trim();
  if (!name || !room) return;
  localStorage.setItem('duplex-chat-name', name);
  history.replaceState(null, '', `?room=${encodeURIComponent(room)}`);
  join(name, room);
});

function join(name, room) {
  $('join').hidden = true;
  $('chat').hidden = false;
  $('state').hidden = false;
  $('room-name').textContent = room;
  document.title = `${room} · duplex chat`;
  const topic = `chat:${room}`;
  const typingTopic = `typing:${room}`;
  const client = connect({ name });
  showState(client, $('state'));

  const list = $('messages');
  const pending = new Map(); // message id → element, until the message comes back from the server
  const members = new Map(); // connId → name
  const typing = new Map(); // name → time it stops showing
  let connects = 0;
  let caughtUp = 0;

  const atBottom = () => list.scrollHeight - list.scrollTop - list.clientHeight < 60;
  const add = (element) => {
    const stick = atBottom();
    list.append(element);
    if (stick) list.scrollTop = list.scrollHeight;
  };
  const system = (text, bad = false) => {
    const line = document.createElement('div');
    line.className = bad ? 'system bad' : 'system';
    line.textContent = text;
    add(line);
  };
  const bubble = (data, mine) => {
    const element = document.createElement('div');
    element.className = mine ? 'msg mine' : 'msg';
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = String(data.name ?? '?');
    const when = document.createElement('span');
    when.className = 'when';
    when.textContent = clock(Number(data.ts) || Date.now());
    const text = document.createElement('span');
    text.className = 'text';
    text.textContent = String(data.text ?? '');
    element.append(who, when, text);
    return element;
  };

  // ---- messages ----
  const onMessage = (data, meta) => {
    if (typeof data !== 'object' || data === null) return;
    typing.delete(data.name);
    renderTyping();
    const mine = data.from === me || pending.has(data.id);
    const element = bubble(data, mine);
    element.dataset.offset = String(meta.offset);
    if (meta.recovered && connects > 1) {
      element.classList.add('recovered');
      element.title = 'missed while disconnected: recovered from history';
      caughtUp++;
    }
    const waiting = pending.get(data.id);
    if (waiting) {
      pending.delete(data.id);
      waiting.replaceWith(element);
    } else {
      add(element);
    }
  };

  // ---- presence ----
  const renderPeople = () => {
    const names = new Map();
    for (const [connId, who] of members) names.set(who, (names.get(who) ?? false) || connId === client.connId);
    if (client.connId) names.set(name, true);
    const ul = $('people');
    ul.replaceChildren(
      ...[...names.keys()].sort((a, b) => a.localeCompare(b)).map((who) => {
        const li = document.createElement('li');
        li.textContent = who;
        if (who === name) li.className = 'me';
        return li;
      }),
    );
    $('online-count').textContent = String(names.size);
  };
  const memberName = (member) => (member.info && typeof member.info.name === 'string' ? member.info.name : `guest ${member.connId}`);
  const refreshPresence = async () => {
    try {
      const list = await client.presence(topic);
      members.clear();
      for (const member of list) members.set(member.connId, memberName(member));
      renderPeople();
    } catch (error) {
      console.warn('presence', error);
    }
  };
  client.on('join', (t, member) => {
    if (t !== topic) return;
    const who = memberName(member);
    const known = [...members.values()].includes(who);
    members.set(member.connId, who);
    if (!known) system(`${who} joined`);
    renderPeople();
  });
  client.on('leave', (t, member) => {
    if (t !== topic) return;
    const who = members.get(member.connId) ?? memberName(member);
    members.delete(member.connId);
    if (![...members.values()].includes(who)) system(`${who} left`);
    renderPeople();
  });

  // ---- typing ----
  const renderTyping = () => {
    const now = Date.now();
    for (const [who, until] of typing) if (until < now) typing.delete(who);
    const names = [...typing.keys()];
    $('typing').textContent = names.length === 0 ? '' : names.length === 1 ? `${names[0]} is typing…` : `${names.join(', ')} are typing…`;
  };
  setInterval(renderTyping, 500);
  let lastTyping = 0;
  $('text').addEventListener('input', () => {
    const now = Date.now();
    if (now - lastTyping < TYPING_EVERY || client.state !== 'open' || $('text').value === '') return;
    lastTyping = now;
    client.publish(typingTopic, { name }, { excludeSelf: true }).catch(() => {});
  });

  // ---- connection ----
  client.on('connected', (info) => {
    connects++;
    $('conn-id').textContent = `connection ${info.connId}`;
    if (connects > 1) {
      caughtUp = 0;
      system('reconnected');
      // The subscribe replies (with what was missed) come before this presence reply.
      refreshPresence().then(() => {
        if (caughtUp > 0) system(`caught up on ${caughtUp} missed message${caughtUp === 1 ? '' : 's'}`);
      });
    }
  });
  client.on('disconnected', ({ code }) => {
    system(`connection lost (${code}): reconnecting…`, true);
    members.clear();
    renderPeople();
  });
  client.on('gap', (info) => {
    if (info.topic === topic) system(`some messages could not be recovered (${info.reason})`, true);
  });
  client.on('error', (error) => console.warn('duplex:', error.message));

  // ---- sending ----
  $('composer').addEventListener('submit', (event) => {
    event.preventDefault();
    const text = $('text').value.trim();
    if (!text) return;
    $('text').value = '';
    lastTyping = 0;
    const data = { id: crypto.randomUUID(), name, text, ts: Date.now(), from: me };
    const element = bubble(data, true);
    element.classList.add('pending');
    element.title = 'sending…';
    pending.set(data.id, element);
    add(element);
    client.publish(topic, data).catch((error) => {
      if (!pending.has(data.id)) return;
      element.title = `not confirmed: ${error.message}`;
      element.classList.add('failed');
    });
  });

  // ---- start: recent history, then live ----
  (async () => {
    const before = list.childElementCount;
    // The history comes from an RPC: the server's `duplex.history`, or your backend's.
    await subscribeWithHistory(client, topic, HISTORY, onMessage);
    const shown = list.childElementCount - before;
    if (shown > 0) {
      const divider = document.createElement('div');
      divider.className = 'system';
      divider.textContent = `${shown} earlier message${shown === 1 ? '' : 's'}`;
      list.insertBefore(divider, list.children[before] ?? null);
    }
    system(`you joined ${room}`);
    await client.subscribe(typingTopic, (data) => {
      if (data && typeof data.name === 'string' && data.name !== name) {
        typing.set(data.name, Date.now() + TYPING_SHOWN);
        renderTyping();
      }
    }, { recover: false });
    await refreshPresence();
    $('text').focus();
  })().catch((error) => system(`could not join: ${error.message}`, true));
}

if (query.get('name') && query.get('autojoin') !== null) $('join-form').requestSubmit();
