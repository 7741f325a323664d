import {
  START_JAEGER,
  demoTraceDestination,
  describeTraceDestination,
  jaegerHint,
  jaegerTraceUrl,
  sdkTraceDestination,
} from '../../scripts/trace-destination';

const ID = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('where the stack says its services send traces (the OTel SDK rules)', () => {
  it('defaults to OTLP/HTTP protobuf on localhost:4318, and says how to start a Jaeger there', () => {
    const d = sdkTraceDestination({});
    expect(d).toEqual({ kind: 'otlp', endpoint: 'http://localhost:4318/v1/traces', protocol: 'http/protobuf' });
    expect(describeTraceDestination(d)).toBe(`OTLP http://localhost:4318/v1/traces (http/protobuf); nothing listening there? ${START_JAEGER}`);
    expect(START_JAEGER).toBe('docker compose -f deploy/compose.yaml up -d jaeger');
  });

  it('appends /v1/traces to OTEL_EXPORTER_OTLP_ENDPOINT, takes OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as written and before it', () => {
    expect(sdkTraceDestination({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })).toMatchObject({ endpoint: 'http://collector:4318/v1/traces' });
    expect(
      sdkTraceDestination({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://tempo:4318/otlp/v1/traces' }),
    ).toMatchObject({ endpoint: 'http://tempo:4318/otlp/v1/traces' });
    // A collector elsewhere: starting a local Jaeger is no advice.
    expect(describeTraceDestination(sdkTraceDestination({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }))).toBe(
      'OTLP http://collector:4318/v1/traces (http/protobuf)',
    );
  });

  it('follows the protocol: gRPC defaults to 4317 and takes the endpoint without a path', () => {
    expect(sdkTraceDestination({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toEqual({ kind: 'otlp', endpoint: 'http://localhost:4317', protocol: 'grpc' });
    expect(sdkTraceDestination({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317' })).toEqual({
      kind: 'otlp',
      endpoint: 'http://c:4317',
      protocol: 'grpc',
    });
  });

  it('says tracing is off with OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none, and prints no Jaeger link then', () => {
    for (const env of [{ OTEL_SDK_DISABLED: 'TRUE' }, { OTEL_TRACES_EXPORTER: 'none' }, { OTEL_TRACES_EXPORTER: 'none,otlp' }]) {
      const d = sdkTraceDestination(env);
      expect(describeTraceDestination(d)).toMatch(/^tracing off \((OTEL_SDK_DISABLED=true|OTEL_TRACES_EXPORTER=none(,otlp)?)\)$/);
      expect(jaegerHint(env, d)).toBeUndefined();
    }
    // As the SDK: `none` after another exporter is ignored (OTLP), a list without otlp exports elsewhere.
    expect(sdkTraceDestination({ OTEL_TRACES_EXPORTER: 'console,none' })).toMatchObject({ kind: 'otlp' });
    expect(describeTraceDestination(sdkTraceDestination({ OTEL_TRACES_EXPORTER: 'console' }))).toBe('not sent over OTLP (OTEL_TRACES_EXPORTER=console)');
  });

  it('opens a trace id at JAEGER_UI_URL (default http://localhost:16686)', () => {
    expect(jaegerTraceUrl({}, ID)).toBe(`http://localhost:16686/trace/${ID}`);
    expect(jaegerTraceUrl({ JAEGER_UI_URL: 'https://jaeger.example.com/' }, ID)).toBe(`https://jaeger.example.com/trace/${ID}`);
    expect(jaegerHint({}, sdkTraceDestination({}))).toBe('open in Jaeger: http://localhost:16686/trace/<trace id>');
  });
});

describe('where the demo says its traces go', () => {
  it('keeps them in memory unless an OTLP endpoint is set, and says how to see them in Jaeger', () => {
    const d = demoTraceDestination({});
    expect(d).toEqual({ kind: 'memory' });
    expect(describeTraceDestination(d)).toBe(`kept in memory only; to see them in Jaeger: ${START_JAEGER}, then run with OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318`);
    expect(jaegerHint({}, d, ID)).toBe("in memory only: with OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 a run's traces open at http://localhost:16686/trace/<trace id>");
  });

  it('exports as OTLP/HTTP JSON to the endpoint set, and links the printed trace id', () => {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' };
    const d = demoTraceDestination(env);
    expect(d).toEqual({ kind: 'otlp', endpoint: 'http://localhost:4318/v1/traces', protocol: 'http/json' });
    expect(jaegerHint(env, d, ID)).toBe(`open in Jaeger: http://localhost:16686/trace/${ID}`);
    expect(demoTraceDestination({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' })).toMatchObject({ kind: 'otlp', endpoint: 'http://c:4318/v1/traces' });
  });

  it("honours the SDK's off switches even with an endpoint set", () => {
    expect(demoTraceDestination({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4318', OTEL_SDK_DISABLED: 'true' })).toEqual({
      kind: 'off',
      reason: 'tracing off (OTEL_SDK_DISABLED=true)',
    });
  });
});
