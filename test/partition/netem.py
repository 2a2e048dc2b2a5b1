#!/usr/bin/python3
"""netem in user space: the links of the partition test bed (test/partition/bed.ts).

The kernel of the test machine has no sch_netem, so each link between two network namespaces is
a pair of TUN devices, one per end, and this process moves the IP packets between them:
whatever the kernel of one namespace routes into its end of the link is read here and written
into the other end, where that namespace's kernel receives it. On the way each direction of a
link applies what the nemesis asked for:

  delay  a fixed delay in ms; packets keep their order (a packet is never released before the
         one ahead of it, also when the delay changes);
  loss   a probability of dropping each packet (seeded PRNG);
  cut    drop everything (a partition: no RST, no ICMP; TCP sees a black hole). Packets already
         delayed when a cut starts are dropped when they come due.
  dropData  drop the TCP segments that carry data and let the rest through (pure ACKs, SYN,
         FIN, RST, keepalive probes): a peer whose acknowledgements still arrive while its data
         does not, as behind a broken middlebox. Used to reach one state on purpose (a request
         acknowledged whose answer never comes).

Standard library only (Debian's /usr/bin/python3): no compiler, no package. The traffic of the
test is a few thousand packets a second at most, which one epoll loop carries with little CPU.

Usage: netem.py --seed N NAME=IFACE1,IFACE2 ...
  Creates the TUN devices (in the namespace this process runs in; the caller moves them into
  their namespaces and addresses them: the open file keeps the device attached), prints one JSON
  line {"ready": true}, then reads commands from stdin, one JSON object per line, and answers
  each with one JSON line carrying the same "id":

  {"id": 1, "op": "set", "link": NAME, "dir": "both"|"12"|"21", "delay": MS, "loss": P, "cut": B, "dropData": B}
      fields left out keep their value; "12" is from IFACE1's side to IFACE2's
  {"id": 2, "op": "heal"}    every link back to no delay, no loss, no cut
  {"id": 3, "op": "stats"}   packet counters per link and direction
  {"id": 4, "op": "quit"}

End of stdin (the test process died) also ends it; the TUN devices go with it.
"""
import collections
import fcntl
import json
import os
import random
import select
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
# Like netem's `limit`: a direction holds at most this many delayed packets, then drops (tail).
QUEUE_LIMIT = 10000
# Packets read from one device per loop pass before the others get their turn.
READ_BATCH = 64


def open_tun(name):
    fd = os.open('/dev/net/tun', os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


class Direction:
    """One direction of a link: its impairments, its queue of delayed packets, its counters."""

    def __init__(self, rng, out_fd):
        self.rng = rng
        self.out_fd = out_fd
        self.delay = 0.0  # seconds
        self.loss = 0.0
        self.cut = False
        self.drop_data = False
        self.queue = collections.deque()  # (due, packet), due non-decreasing
        self.counters = {'forwarded': 0, 'lost': 0, 'blackholed': 0, 'overflow': 0, 'errors': 0, 'dataDropped': 0}

    def arrive(self, packet, now):
        if self.cut:
            self.counters['blackholed'] += 1
            return
        if self.drop_data and carries_tcp_data(packet):
            self.counters['dataDropped'] += 1
            return
        if self.loss > 0 and self.rng.random() < self.loss:
            self.counters['lost'] += 1
            return
        if self.delay <= 0 and not self.queue:
            self.write(packet)
            return
        if len(self.queue) >= QUEUE_LIMIT:
            self.counters['overflow'] += 1
            return
        due = now + self.delay
        if self.queue and self.queue[-1][0] > due:
            due = self.queue[-1][0]  # keep the order when the delay was lowered
        self.queue.append((due, packet))

    def release(self, now):
        while self.queue and self.queue[0][0] <= now:
            _, packet = self.queue.popleft()
            if self.cut:
                self.counters['blackholed'] += 1
            else:
                self.write(packet)

    def next_due(self):
        return self.queue[0][0] if self.queue else None

    def write(self, packet):
        try:
            os.write(self.out_fd, packet)
            self.counters['forwarded'] += 1
        except OSError:
            # EIO while the far end is down (not yet configured), ENOBUFS under pressure: a lost packet.
            self.counters['errors'] += 1

    def set(self, command):
        if 'delay' in command:
            self.delay = max(0.0, float(command['delay']) / 1000.0)
        if 'loss' in command:
            self.loss = min(1.0, max(0.0, float(command['loss'])))
        if 'cut' in command:
            self.cut = bool(command['cut'])
        if 'dropData' in command:
            self.drop_data = bool(command['dropData'])

    def state(self):
        return dict(self.counters, delay=round(self.delay * 1000), loss=self.loss, cut=self.cut, dropData=self.drop_data, queued=len(self.queue))


def carries_tcp_data(packet):
    """Whether an IPv4 packet is a TCP segment with a payload (RFC 791 header, RFC 9293 data offset)."""
    if len(packet) < 20 or packet[0] >> 4 != 4 or packet[9] != 6:
        return False
    header = (packet[0] & 0x0F) * 4
    total = (packet[2] << 8) | packet[3]
    if len(packet) < header + 13:
        return False
    offset = (packet[header + 12] >> 4) * 4
    return total - header - offset > 0


def parse_args(argv):
    seed = 0
    links = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == '--seed':
            seed = int(argv[i + 1])
            i += 2
            continue
        name, _, ifaces = arg.partition('=')
        first, _, second = ifaces.partition(',')
        if not name or not first or not second:
            raise SystemExit('netem.py: a link is NAME=IFACE1,IFACE2, not ' + arg)
        links.append((name, first, second))
        i += 1
    return seed, links


def main():
    seed, specs = parse_args(sys.argv[1:])
    links = {}
    by_fd = {}
    for index, (name, first, second) in enumerate(specs):
        fd1 = open_tun(first)
        fd2 = open_tun(second)
        # One PRNG per direction, derived from the seed: the loss pattern of one link does not
        # depend on how much traffic the others carried.
        d12 = Direction(random.Random(seed * 1000 + index * 2), fd2)
        d21 = Direction(random.Random(seed * 1000 + index * 2 + 1), fd1)
        links[name] = {'12': d12, '21': d21}
        by_fd[fd1] = d12
        by_fd[fd2] = d21

    poller = select.epoll()
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    stdin = sys.stdin.fileno()
    os.set_blocking(stdin, False)
    poller.register(stdin, select.EPOLLIN)
    pending = b''
    reply({'ready': True, 'links': sorted(links)})

    while True:
        now = time.monotonic()
        dues = [d.next_due() for pair in links.values() for d in pair.values()]
        dues = [due for due in dues if due is not None]
        timeout = max(0.0, min(dues) - now) if dues else 1.0
        for fd, _ in poller.poll(timeout):
            if fd == stdin:
                chunk = os.read(stdin, 65536)
                if not chunk:
                    return
                pending += chunk
                while b'\n' in pending:
                    line, pending = pending.split(b'\n', 1)
                    if line.strip() and not handle(line, links):
                        return
                continue
            direction = by_fd[fd]
            arrived = time.monotonic()
            for _ in range(READ_BATCH):
                try:
                    packet = os.read(fd, 65536)
                except BlockingIOError:
                    break
                except OSError:
                    break
                direction.arrive(packet, arrived)
        now = time.monotonic()
        for pair in links.values():
            for d in pair.values():
                d.release(now)


def handle(line, links):
    """Run one command; False to stop."""
    try:
        command = json.loads(line)
    except ValueError as error:
        reply({'ok': False, 'error': 'not JSON: ' + str(error)})
        return True
    ident = command.get('id')
    op = command.get('op')
    if op == 'quit':
        reply({'id': ident, 'ok': True})
        return False
    if op == 'heal':
        for pair in links.values():
            for d in pair.values():
                d.set({'delay': 0, 'loss': 0, 'cut': False, 'dropData': False})
        reply({'id': ident, 'ok': True})
        return True
    if op == 'stats':
        reply({'id': ident, 'ok': True, 'links': {name: {k: d.state() for k, d in pair.items()} for name, pair in links.items()}})
        return True
    if op == 'set':
        pair = links.get(command.get('link'))
        which = command.get('dir', 'both')
        if pair is None or which not in ('both', '12', '21'):
            reply({'id': ident, 'ok': False, 'error': 'unknown link or dir: ' + line.decode(errors='replace')})
            return True
        for key in (('12', '21') if which == 'both' else (which,)):
            pair[key].set(command)
        reply({'id': ident, 'ok': True})
        return True
    reply({'id': ident, 'ok': False, 'error': 'unknown op: ' + str(op)})
    return True


def reply(obj):
    sys.stdout.write(json.dumps(obj) + '\n')
    sys.stdout.flush()


if __name__ == '__main__':
    main()
