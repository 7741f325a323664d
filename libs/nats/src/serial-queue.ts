/**
 * Runs async tasks one at a time in arrival order: one subscription's handler
 * never runs concurrently with itself, as with a NATS subscription callback
 * that awaits. `idle()` resolves when everything queued so far has run.
 */
export function createSerialQueue(onError: (err: unknown) => void) {
  let tail: Promise<void> = Promise.resolve();
  return {
    push(task: () => Promise<void> | void): void {
      tail = tail.then(task).catch(onError);
    },
    idle(): Promise<void> {
      return tail;
    },
  };
}
