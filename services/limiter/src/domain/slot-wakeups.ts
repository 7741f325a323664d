import type { KeyKind } from './quota-store';

/** How wake-ups name a key: `<kind>:<id>` (the same name the stores give a reservation's keys). */
export const slotKeyName = (key: { kind: KeyKind; id: string }): string => `${key.kind}:${key.id}`;

/** One waiting Acquire's view of the frees of its concurrency-limited keys. */
export interface SlotWatch {
  /** Counts afresh from now: call right before asking the store. */
  restart(): void;
  /**
   * Calls `wake` once `slots` frees of `name` were counted since restart(),
   * replacing any earlier arm. Returns false (and does not arm) when they
   * already were: the waiter should ask again at once.
   */
  arm(name: string, slots: number, wake: () => void): boolean;
  disarm(): void;
  close(): void;
}

/**
 * Waiters blocked on a concurrency limit, woken when slots of their key are
 * freed (a Settle or cancel on this replica, or on another one through the
 * slot feed) instead of at their next poll.
 *
 * A wake-up only makes a waiter ask the store again: the wait queue in the
 * store decides who gets the slot, so order and fairness are the store's, and
 * a lost wake-up costs at most the poll interval. The store tells a denied
 * waiter how many slots must free before it fits (`slotsShort`: holders plus
 * tickets ahead of it, minus the limit, plus one); the waiter sleeps through
 * fewer frees than that, so one Settle makes about one waiter re-ask instead
 * of the whole line. Frees are counted from just before each ask, so one that
 * lands while the ask is in flight is not missed (at worst it was already
 * seen by the store and the waiter asks once too early). Frees the store sees
 * but nobody announces (a ticket ahead lapsing, a reservation expiring) are
 * left to the poll.
 */
export function createSlotWakeups() {
  const listeners = new Map<string, Set<() => void>>();

  /** Slots of these keys were freed (one name per slot). */
  function freed(names: readonly string[]) {
    for (const name of names) for (const fn of [...(listeners.get(name) ?? [])]) fn();
  }

  function watch(names: readonly string[]): SlotWatch {
    const counts = new Map<string, number>();
    let armed: { name: string; need: number; wake: () => void } | undefined;
    const offs = [...new Set(names)].map((name) => {
      counts.set(name, 0);
      const fn = () => {
        const n = (counts.get(name) ?? 0) + 1;
        counts.set(name, n);
        if (armed?.name === name && n >= armed.need) {
          const { wake } = armed;
          armed = undefined;
          wake();
        }
      };
      let set = listeners.get(name);
      if (!set) listeners.set(name, (set = new Set()));
      set.add(fn);
      return () => {
        set.delete(fn);
        if (set.size === 0) listeners.delete(name);
      };
    });
    return {
      restart() {
        for (const name of counts.keys()) counts.set(name, 0);
      },
      arm(name, slots, wake) {
        armed = undefined;
        if (!counts.has(name)) return true;
        if ((counts.get(name) ?? 0) >= slots) return false;
        armed = { name, need: slots, wake };
        return true;
      },
      disarm() {
        armed = undefined;
      },
      close() {
        armed = undefined;
        for (const off of offs) off();
      },
    };
  }

  /** Waiters currently watching (tests, metrics). */
  const watching = () => [...listeners.values()].reduce((n, s) => n + s.size, 0);

  return { freed, watch, watching };
}

export type SlotWakeups = ReturnType<typeof createSlotWakeups>;
