import { trace } from '@opentelemetry/api';
import { startInMemoryTracing, type InMemoryTracing } from '@switchyard/testing';
import { SpanKind } from '@opentelemetry/api';
import { isKvConflictError, type BusMessage, type DurableMessage, type EventBus } from '../src/index';

/** What an implementation's spec provides: bus clients that share one "server". */
export interface EventBusFixture {
  /** A new client (think: another process) on the same server. */
  connect(name: string): Promise<EventBus>;
  teardown(): Promise<void>;
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));

/** Collects items and lets a test await "at least n arrived" without sleeping. */
function collector<T>() {
  const items: T[] = [];
  const waiters: Array<{ check: () => void }> = [];
  return {
    items,
    push(item: T) {
      items.push(item);
      for (const w of [...waiters]) w.check();
    },
    waitFor(n: number, timeoutMs = 5_000): Promise<T[]> {
      return this.waitUntil((all) => all.length >= n, timeoutMs, `${n} items`);
    },
    waitUntil(predicate: (all: T[]) => boolean, timeoutMs = 5_000, what = 'condition'): Promise<T[]> {
      if (predicate(items)) return Promise.resolve(items);
      return new Promise((resolve, reject) => {
        const waiter = {
          check: () => {
            if (!predicate(items)) return;
            clearTimeout(timer);
            waiters.splice(waiters.indexOf(waiter), 1);
            resolve(items);
          },
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`waited for ${what}; got ${items.length}: ${JSON.stringify(items)}`));
        }, timeoutMs);
        waiters.push(waiter);
      });
    },
  };
}

let unique = 0;
const uid = (prefix: string) => `${prefix}${Date.now().toString(36)}${(unique++).toString(36)}`;

/**
 * The behaviour every EventBus must have. Run by memory.spec.ts and
 * nats.int.spec.ts so the embedded demo and production share semantics.
 */
export function eventBusContract(name: string, setup: () => Promise<EventBusFixture>): void {
  describe(`EventBus contract: ${name}`, () => {
    let fixture: EventBusFixture;
    let tracing: InMemoryTracing;
    const open: EventBus[] = [];
    const connect = async (client: string) => {
      const bus = await fixture.connect(client);
      open.push(bus);
      return bus;
    };

    beforeAll(async () => {
      tracing = startInMemoryTracing();
      fixture = await setup();
    });
    afterEach(async () => {
      await Promise.all(open.splice(0).map((bus) => bus.close()));
      tracing.reset();
    });
    afterAll(async () => {
      await fixture?.teardown();
      await tracing?.shutdown();
    });

    describe('publish / subscribe', () => {
      it('delivers by subject with * and > wildcards, across clients, in order', async () => {
        const [pub, sub] = [await connect('pub'), await connect('sub')];
        const root = uid('t');
        const star = collector<string>();
        const tail = collector<string>();
        await sub.subscribe(`${root}.*.c`, (m) => star.push(`${m.subject}=${dec(m.data)}`));
        await sub.subscribe(`${root}.>`, (m) => tail.push(m.subject));
        await pub.publish(`${root}.b.c`, enc('1'));
        await pub.publish(`${root}.b.d`, enc('2'));
        await pub.publish(`${root}.x.c`, enc('3'));
        await pub.publish(`${root}.b.c.deeper`, enc('4'));
        await pub.publish(`other.${root}.b.c`, enc('5'));
        expect(await tail.waitFor(4)).toEqual([`${root}.b.c`, `${root}.b.d`, `${root}.x.c`, `${root}.b.c.deeper`]);
        expect(await star.waitFor(2)).toEqual([`${root}.b.c=1`, `${root}.x.c=3`]);
      });

      it('stops delivering after unsubscribe and survives a throwing handler', async () => {
        const bus = await connect('one');
        const root = uid('u');
        const gone = collector<string>();
        const kept = collector<string>();
        const sub = await bus.subscribe(`${root}.a`, (m) => gone.push(dec(m.data)!));
        await bus.subscribe(`${root}.*`, (m) => {
          kept.push(dec(m.data)!);
          if (dec(m.data) === 'boom') throw new Error('handler failure');
        });
        await bus.publish(`${root}.a`, enc('boom'));
        await kept.waitFor(1);
        await sub.unsubscribe();
        await bus.publish(`${root}.a`, enc('after'));
        expect(await kept.waitFor(2)).toEqual(['boom', 'after']);
        expect(gone.items).toEqual(['boom']);
      });

      it('rejects unpublishable subjects, naming them', async () => {
        const bus = await connect('bad');
        await expect(bus.publish('a.*.b', enc('x'))).rejects.toThrow(/"a\.\*\.b" is not publishable/);
        await expect(bus.publish('a..b', enc('x'))).rejects.toThrow(/not publishable/);
        await expect(bus.subscribe('a.>.b', () => {})).rejects.toThrow(/invalid at token 2/);
      });

      it('carries W3C trace context: the consumer span continues the producer trace', async () => {
        const [pub, sub] = [await connect('tp'), await connect('ts')];
        const subject = `${uid('tr')}.evt`;
        const got = collector<{ msg: BusMessage; traceId?: string }>();
        await sub.subscribe(subject, (msg) => got.push({ msg, traceId: trace.getActiveSpan()?.spanContext().traceId }));
        const tracer = trace.getTracer('contract');
        const parentTraceId = await tracer.startActiveSpan('caller', async (span) => {
          await pub.publish(subject, enc('x'), { headers: { 'x-app': 'kept' } });
          span.end();
          return span.spanContext().traceId;
        });
        const [{ msg, traceId }] = await got.waitFor(1);
        expect(msg.headers['x-app']).toBe('kept');
        expect(msg.headers.traceparent).toMatch(new RegExp(`^00-${parentTraceId}-[0-9a-f]{16}-01$`));
        expect(traceId).toBe(parentTraceId);
        const spans = tracing.spans();
        const producer = spans.find((s) => s.name === `${subject} publish`)!;
        const consumer = await waitForSpan(tracing, `${subject} process`);
        expect(producer.kind).toBe(SpanKind.PRODUCER);
        expect(producer.attributes).toMatchObject({ 'messaging.system': 'nats', 'messaging.destination.name': subject });
        expect(consumer.kind).toBe(SpanKind.CONSUMER);
        expect(consumer.spanContext().traceId).toBe(parentTraceId);
        expect(consumer.parentSpanContext?.spanId).toBe(producer.spanContext().spanId);
      });
    });

    describe('durable streams', () => {
      it('delivers at least once across a consumer restart (nothing acked is lost or skipped)', async () => {
        const producer = await connect('producer');
        const stream = uid('S');
        const root = uid('o');
        await producer.ensureStream({ name: stream, subjects: [`${root}.>`] });
        for (let i = 1; i <= 5; i++) await producer.publishDurable(`${root}.p.d`, enc(`m${i}`));

        const first = await connect('consumer-1');
        const seen = collector<string>();
        let handled = 0;
        let release!: () => void;
        const stopped = new Promise<void>((r) => (release = r));
        const c1 = await first.consume({
          stream,
          durable: 'breaker',
          ackWaitMs: 500,
          handler: async (m) => {
            seen.push(dec(m.data)!);
            if (++handled === 2) release();
          },
        });
        await stopped;
        await c1.stop();
        await first.close();
        for (let i = 6; i <= 7; i++) await producer.publishDurable(`${root}.p.d`, enc(`m${i}`));

        const second = await connect('consumer-2');
        // Messages the stopped consumer had pulled but not handled come back after ack_wait.
        const c2 = await second.consume({ stream, durable: 'breaker', ackWaitMs: 500, handler: (m) => seen.push(dec(m.data)!) });
        await seen.waitUntil((items) => new Set(items).size === 7);
        await c2.stop();
        const unique = new Set(seen.items);
        expect([...unique].sort()).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7']);
        // Order within the stream is preserved for a single consumer.
        expect(seen.items.slice(0, 2)).toEqual(['m1', 'm2']);
      });

      it('redelivers a message whose handler threw (nak), counting deliveries', async () => {
        const bus = await connect('nak');
        const stream = uid('N');
        const root = uid('n');
        await bus.ensureStream({ name: stream, subjects: [`${root}.>`] });
        await bus.publishDurable(`${root}.x`, enc('flaky'));
        const deliveries = collector<DurableMessage>();
        const consumer = await bus.consume({
          stream,
          durable: 'd',
          nakDelayMs: 10,
          handler: (m) => {
            deliveries.push(m);
            if (m.deliveryCount === 1) throw new Error('transient');
          },
        });
        const [a, b] = await deliveries.waitFor(2);
        await consumer.stop();
        expect([a!.seq, a!.deliveryCount, b!.seq, b!.deliveryCount]).toEqual([1, 1, 1, 2]);
      });

      it('filters by subject and de-duplicates by msgId', async () => {
        const bus = await connect('filter');
        const stream = uid('F');
        const root = uid('f');
        await bus.ensureStream({ name: stream, subjects: [`${root}.>`] });
        await bus.ensureStream({ name: stream, subjects: [`${root}.>`] }); // idempotent
        const one = await bus.publishDurable(`${root}.a`, enc('a1'), { msgId: 'id-1' });
        const again = await bus.publishDurable(`${root}.a`, enc('a1'), { msgId: 'id-1' });
        expect(again).toEqual({ seq: one.seq, duplicate: true });
        await bus.publishDurable(`${root}.b`, enc('b1'));
        await bus.publishDurable(`${root}.a`, enc('a2'));
        const got = collector<string>();
        const consumer = await bus.consume({ stream, durable: 'only-a', filterSubject: `${root}.a`, handler: (m) => got.push(dec(m.data)!) });
        expect(await got.waitFor(2)).toEqual(['a1', 'a2']);
        await consumer.stop();
      });

      it('refuses a durable publish no stream captures', async () => {
        const bus = await connect('nostream');
        await expect(bus.publishDurable(`${uid('nobody')}.x`, enc('x'))).rejects.toThrow();
      });

      it('core publish to a stream subject is stored too', async () => {
        const bus = await connect('corestore');
        const stream = uid('C');
        const root = uid('c');
        await bus.ensureStream({ name: stream, subjects: [`${root}.>`] });
        // Inside a trace, so the stored message carries trace headers (a publish outside any trace sends none).
        await trace.getTracer('contract').startActiveSpan('caller', async (span) => {
          await bus.publish(`${root}.x`, enc('core'));
          span.end();
        });
        const got = collector<DurableMessage>();
        const consumer = await bus.consume({ stream, durable: 'd', handler: (m) => got.push(m) });
        const [m] = await got.waitFor(1);
        await consumer.stop();
        expect(dec(m!.data)).toBe('core');
        expect(m!.headers).toHaveProperty('traceparent');
      });
    });

    describe('KV', () => {
      it('puts, gets, lists and deletes with increasing revisions', async () => {
        const kv = await (await connect('kv')).kv(uid('b'));
        expect(await kv.get('openai.gpt4o')).toBeNull();
        const r1 = await kv.put('openai.gpt4o', enc('CLOSED'));
        const r2 = await kv.put('anthropic.sonnet', enc('OPEN'));
        expect(r2).toBeGreaterThan(r1);
        expect(dec((await kv.get('openai.gpt4o'))!.value)).toBe('CLOSED');
        expect((await kv.get('openai.gpt4o'))!.revision).toBe(r1);
        expect((await kv.keys()).sort()).toEqual(['anthropic.sonnet', 'openai.gpt4o']);
        await kv.delete('openai.gpt4o');
        expect(await kv.get('openai.gpt4o')).toBeNull();
        expect(await kv.keys()).toEqual(['anthropic.sonnet']);
      });

      it('lists each key once while the keys are being written', async () => {
        const kv = await (await connect('kv-busy')).kv(uid('busy'));
        const keys = Array.from({ length: 100 }, (_, i) => `deployment.d${String(i).padStart(3, '0')}`);
        for (const key of keys) await kv.put(key, enc('CLOSED'));
        let writing = true;
        const writes = (async () => {
          let rounds = 0;
          while (writing || rounds === 0) {
            for (const key of keys) await kv.put(key, enc(`round ${rounds}`));
            rounds++;
          }
        })();
        const listings: string[][] = [];
        for (let i = 0; i < 5; i++) listings.push(await kv.keys());
        writing = false;
        await writes;
        for (const listed of listings) expect([...listed].sort()).toEqual(keys);
      });

      it('create fails on an existing key and update is compare-and-set', async () => {
        const bus = await connect('cas');
        const bucket = uid('cas');
        const kv = await bus.kv(bucket);
        const other = await (await connect('cas-2')).kv(bucket);
        const r1 = await kv.create('k', enc('v1'));
        const createErr = await kv.create('k', enc('again')).catch((e: unknown) => e);
        expect(isKvConflictError(createErr)).toBe(true);
        const r2 = await other.update('k', enc('v2'), r1);
        expect(r2).toBeGreaterThan(r1);
        const stale = await kv.update('k', enc('lost update'), r1).catch((e: unknown) => e);
        expect(isKvConflictError(stale)).toBe(true);
        expect((stale as Error).message).toContain(`${bucket}/k`);
        expect(dec((await kv.get('k'))!.value)).toBe('v2');
        // A deleted key can be created again.
        await kv.delete('k');
        await expect(kv.create('k', enc('v3'))).resolves.toBeGreaterThan(r2);
      });

      it('watch delivers current values before resolving, then every change', async () => {
        const bus = await connect('watch');
        const bucket = uid('w');
        const kv = await bus.kv(bucket);
        await kv.put('a', enc('1'));
        await kv.put('b', enc('1'));
        await kv.put('gone', enc('x'));
        await kv.delete('gone');

        const replica = new Map<string, string | null>();
        const events = collector<string>();
        const watcherKv = await (await connect('router')).kv(bucket);
        const watcher = await watcherKv.watch({
          onEntry: (key, value) => {
            replica.set(key, dec(value));
            events.push(`${key}=${dec(value)}`);
          },
        });
        // The replica is complete as soon as watch() resolves.
        expect(Object.fromEntries(replica)).toEqual({ a: '1', b: '1' });

        await kv.put('a', enc('2'));
        await kv.delete('b');
        await kv.put('c', enc('1'));
        expect(await events.waitFor(5)).toEqual(['a=1', 'b=1', 'a=2', 'b=null', 'c=1']);
        await watcher.stop();
        await kv.put('a', enc('3'));
        await kv.put('probe', enc('x'));
        await (await connect('probe')).kv(bucket).then((k) => k.get('probe'));
        expect(events.items).toHaveLength(5);
      });

      it('watch on an empty bucket resolves at once; includeInitial=false skips current values', async () => {
        const bus = await connect('empty');
        const kv = await bus.kv(uid('e'));
        const first = collector<string>();
        const w1 = await kv.watch({ onEntry: (k) => first.push(k) });
        await kv.put('x', enc('1'));
        expect(await first.waitFor(1)).toEqual(['x']);
        const later = collector<string>();
        const w2 = await kv.watch({ includeInitial: false, onEntry: (k, v) => later.push(`${k}=${dec(v)}`) });
        await kv.put('x', enc('2'));
        expect(await later.waitFor(1)).toEqual(['x=2']);
        await w1.stop();
        await w2.stop();
      });

      it('rejects invalid bucket names and keys, naming them', async () => {
        const bus = await connect('badkv');
        await expect(bus.kv('has.dot')).rejects.toThrow(/bucket name "has.dot" is invalid/);
        const kv = await bus.kv(uid('k'));
        await expect(kv.put('bad key', enc('x'))).rejects.toThrow(/KV key "bad key" is invalid/);
        await expect(kv.get('.lead')).rejects.toThrow(/KV key/);
      });
    });

    describe('lifecycle', () => {
      it('reports connected, then closed after close(); a closed bus refuses work', async () => {
        const bus = await fixture.connect('life');
        const seen: string[] = [];
        bus.onStatusChange((s) => seen.push(s));
        expect(bus.status()).toBe('connected');
        await bus.close();
        expect(bus.status()).toBe('closed');
        expect(seen).toContain('closed');
        await expect(bus.publish('a.b', enc('x'))).rejects.toThrow(/closed/);
        await bus.close(); // idempotent
      });
    });
  });
}

async function waitForSpan(tracing: InMemoryTracing, name: string, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const span = tracing.spans().find((s) => s.name === name);
    if (span) return span;
    if (Date.now() > deadline) throw new Error(`no span named ${name}; have ${tracing.spans().map((s) => s.name).join(', ')}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
