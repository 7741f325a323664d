/** What a service's `start(config)` returns; tests and mains share it. */
export interface RunningService {
  port: number;
  /** Port of the Prometheus /metrics endpoint, when the process serves one (announced as `metrics_port`). */
  metricsPort?: number;
  /** Graceful: health NOT_SERVING, finish in-flight calls, drain NATS, quit Redis. */
  stop(): Promise<void>;
}

export interface MainLogger {
  info(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface ProcessLike {
  once(signal: 'SIGTERM' | 'SIGINT', handler: () => void): unknown;
  exit(code: number): never | void;
}

/**
 * The lifecycle every service process shares: start, announce readiness as one
 * JSON line on stdout (`event: "listening"`, the port) that supervisors and
 * tests wait for, whatever the log level, stop gracefully on SIGTERM/SIGINT, and exit non-zero with the reason if
 * start-up fails. `flush` runs last (telemetry export).
 */
export async function runMain(options: {
  name: string;
  logger: MainLogger;
  start: () => Promise<RunningService>;
  flush?: () => Promise<void>;
  proc?: ProcessLike;
  /** Where the readiness line goes; default stdout. */
  announce?: (line: string) => void;
}): Promise<void> {
  const { name, logger, start, flush } = options;
  const proc: ProcessLike = options.proc ?? process;
  const announce = options.announce ?? ((line: string) => void process.stdout.write(line));
  let service: RunningService;
  try {
    service = await start();
  } catch (err) {
    logger.error({ event: 'start_failed', err: { message: (err as Error).message } }, `${name} failed to start`);
    process.stderr.write(`${name}: ${(err as Error).message}\n`);
    await flush?.().catch(() => undefined);
    proc.exit(1);
    return;
  }
  // The readiness line is a protocol, not a log line: written whatever LOG_LEVEL says.
  announce(
    `${JSON.stringify({
      level: 'info',
      time: new Date().toISOString(),
      event: 'listening',
      service: name,
      port: service.port,
      ...(service.metricsPort !== undefined ? { metrics_port: service.metricsPort } : {}),
      msg: `${name} listening on port ${service.port}`,
    })}\n`,
  );
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ event: 'stopping', signal }, `${name} stopping`);
    service
      .stop()
      .then(
        () => 0,
        (err: Error) => {
          logger.error({ event: 'stop_failed', err: { message: err.message } }, `${name} did not stop cleanly`);
          return 1;
        },
      )
      .then(async (code) => {
        await flush?.().catch(() => undefined);
        logger.info({ event: 'stopped', code }, `${name} stopped`);
        proc.exit(code);
      });
  };
  proc.once('SIGTERM', () => shutdown('SIGTERM'));
  proc.once('SIGINT', () => shutdown('SIGINT'));
}
