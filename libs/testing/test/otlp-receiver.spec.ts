import { startOtlpReceiver } from '../src/index';

const payload = {
  resourceSpans: [
    {
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'router' } }] },
      scopeSpans: [
        {
          scope: { name: 'test-scope' },
          spans: [
            {
              traceId: '5B8EFFF798038103D269B633813FC60C',
              spanId: 'eee19b7ec3c1b174',
              parentSpanId: '',
              name: 'root',
              kind: 2,
              attributes: [
                { key: 'http.status', value: { intValue: '200' } },
                { key: 'ok', value: { boolValue: true } },
              ],
            },
            {
              traceId: '5b8efff798038103d269b633813fc60c',
              spanId: 'aaa19b7ec3c1b174',
              parentSpanId: 'eee19b7ec3c1b174',
              name: 'child',
              kind: 4,
              status: { code: 2, message: 'boom' },
            },
          ],
        },
      ],
    },
  ],
};

describe('startOtlpReceiver', () => {
  it('flattens OTLP/HTTP JSON spans and wakes waiters', async () => {
    const receiver = await startOtlpReceiver();
    try {
      const waiting = receiver.waitForSpans((spans) => spans.some((s) => s.name === 'child'), 5000);
      const response = await fetch(`${receiver.url}/v1/traces`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(payload),
      });
      expect(response.status).toBe(200);
      const spans = await waiting;
      expect(spans).toEqual([
        expect.objectContaining({
          traceId: '5b8efff798038103d269b633813fc60c',
          name: 'root',
          kind: 'SERVER',
          parentSpanId: '',
          serviceName: 'router',
          scope: 'test-scope',
          attributes: { 'http.status': 200, ok: true },
        }),
        expect.objectContaining({ name: 'child', kind: 'PRODUCER', parentSpanId: 'eee19b7ec3c1b174', status: { code: 2, message: 'boom' } }),
      ]);
    } finally {
      await receiver.stop();
    }
  });

  it('refuses protobuf with a message naming the fix', async () => {
    const receiver = await startOtlpReceiver();
    try {
      const response = await fetch(`${receiver.url}/v1/traces`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-protobuf' },
        body: new Uint8Array([1, 2, 3]),
      });
      expect(response.status).toBe(415);
      expect(await response.text()).toMatch(/OTEL_EXPORTER_OTLP_PROTOCOL=http\/json/);
    } finally {
      await receiver.stop();
    }
  });

  it('waitForSpans rejects listing what arrived', async () => {
    const receiver = await startOtlpReceiver();
    try {
      await expect(receiver.waitForSpans(() => false, 100)).rejects.toThrow(/received 0/);
    } finally {
      await receiver.stop();
    }
  });
});
