/**
 * One shared clock for every connection's keepalive and idle checks. A timer per connection
 * would cost an object and a heap entry each; here a single unref'd interval walks the
 * connections that asked for checks (uWebSockets does the same with a coarse timer wheel).
 */

/** Something checked on every tick. */
export interface HeartbeatMember {
  /** Called with the tick's time (ms, `Date.now()`). */
  beat(now: number): void;
}

const MIN_PERIOD = 10;
const MAX_PERIOD = 1000;

class Heartbeat {
  /** The time of the last tick: a cheap coarse clock for "last seen" stamps. */
  now = Date.now();
  private readonly members = new Set<HeartbeatMember>();
  private timer: NodeJS.Timeout | undefined;
  private period = MAX_PERIOD;

  /** Check `member` every tick; `granularity` (ms) is the coarsest tick it can live with. */
  add(member: HeartbeatMember, granularity: number): void {
    this.members.add(member);
    const period = Math.max(MIN_PERIOD, Math.min(MAX_PERIOD, Math.floor(granularity)));
    if (!this.timer || period < this.period) {
      this.period = Math.min(period, this.timer ? this.period : period);
      this.restart();
    }
    this.now = Date.now();
  }

  delete(member: HeartbeatMember): void {
    this.members.delete(member);
    if (this.members.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
      this.period = MAX_PERIOD;
    }
  }

  private restart(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = setInterval(() => this.tick(), this.period);
    this.timer.unref();
  }

  private tick(): void {
    const now = (this.now = Date.now());
    for (const member of this.members) member.beat(now);
  }
}

/** The process-wide heartbeat. */
export const heartbeat = new Heartbeat();
