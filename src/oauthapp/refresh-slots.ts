// Spreading refreshes evenly: each app's refresh time is picked inside its own jitter window, in
// the second that has the fewest refreshes already planned. Independent random picks leave
// Poisson clumps (1,000 apps whose tokens expire together see peaks near twice the mean rate);
// filling the emptiest second flattens them. Bookkeeping only: a lost plan costs evenness, never
// correctness, since every pick stays inside the app's window.
const slotMs = 1_000;

export class RefreshSlots {
  private readonly planned = new Map<number, number>();
  private readonly random: () => number;
  private readonly now: () => number;

  constructor(random: () => number, now: () => number) {
    this.random = random;
    this.now = now;
  }

  /** A time in [earliest, latest], in the least planned second of that span. */
  pick(earliest: number, latest: number): number {
    this.forgetPast();
    if (latest - earliest < slotMs) return earliest + this.random() * (latest - earliest);
    const first = Math.ceil(earliest / slotMs);
    const last = Math.floor(latest / slotMs) - 1;
    // A window of a second or more may still hold no whole second (e.g. 1.001 s to 2.001 s).
    if (last < first) return earliest + this.random() * (latest - earliest);
    let least = Number.POSITIVE_INFINITY;
    let candidates: number[] = [];
    for (let slot = first; slot <= last; slot += 1) {
      const count = this.planned.get(slot) ?? 0;
      if (count < least) {
        least = count;
        candidates = [slot];
      } else if (count === least) {
        candidates.push(slot);
      }
    }
    const slot = candidates[Math.floor(this.random() * candidates.length)] ?? first;
    this.planned.set(slot, (this.planned.get(slot) ?? 0) + 1);
    return slot * slotMs + this.random() * slotMs;
  }

  private forgetPast(): void {
    const current = Math.floor(this.now() / slotMs);
    for (const slot of this.planned.keys()) if (slot < current) this.planned.delete(slot);
  }
}
