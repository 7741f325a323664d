import { ManualClock } from '@switchyard/util';
import { createLimiterMode } from './limiter-mode';

function setup() {
  const clock = new ManualClock(1_000_000);
  return { clock, mode: createLimiterMode({ clock, retryMs: 200, windowMs: 3_000, reservationTtlMs: 60_000 }) };
}

describe('limiter mode (shared limiter, or this router’s share while it cannot answer)', () => {
  it('probes nothing while the limiter answers', () => {
    const { mode } = setup();
    expect(mode.probeDue()).toBe(false);
    expect(mode.answered()).toBe(false);
    expect(mode.current()).toBe('shared');
  });

  it('after a failure probes the limiter once per retry interval', () => {
    const { clock, mode } = setup();
    expect(mode.unreachable()).toBe(true);
    expect(mode.unreachable()).toBe(false);
    expect(mode.current()).toBe('local');
    clock.advance(199);
    expect(mode.probeDue()).toBe(false);
    clock.advance(1);
    expect(mode.probeDue()).toBe(true);
    expect(mode.probeDue()).toBe(false);
    // the probe failed 150 ms later: the next one is a whole interval after that
    clock.advance(150);
    mode.unreachable();
    clock.advance(199);
    expect(mode.probeDue()).toBe(false);
    clock.advance(1);
    expect(mode.probeDue()).toBe(true);
  });

  it('the first answer ends the local mode at once', () => {
    const { clock, mode } = setup();
    mode.unreachable();
    clock.advance(200);
    expect(mode.probeDue()).toBe(true);
    expect(mode.answered()).toBe(true);
    expect(mode.current()).toBe('shared');
    clock.advance(1_000);
    expect(mode.probeDue()).toBe(false);
  });

  it('hands over: the share keeps applying until the last local admission has left the window', () => {
    const { clock, mode } = setup();
    expect(mode.handover()).toBe(false);
    mode.unreachable();
    mode.localAdmitted('r1');
    mode.localSettled('r1');
    clock.advance(1_000);
    mode.answered();
    expect(mode.handover()).toBe(true);
    clock.advance(1_999);
    expect(mode.handover()).toBe(true);
    clock.advance(1);
    expect(mode.handover()).toBe(false);
  });

  it('hands over while a local admission is still in flight, however long it runs (up to its TTL)', () => {
    const { clock, mode } = setup();
    mode.unreachable();
    mode.localAdmitted('stream');
    mode.answered();
    clock.advance(10_000);
    expect(mode.handover()).toBe(true);
    mode.localSettled('stream');
    expect(mode.handover()).toBe(false);
    mode.localAdmitted('lost');
    clock.advance(60_000);
    expect(mode.handover()).toBe(false);
  });
});
