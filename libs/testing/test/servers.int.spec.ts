import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { freePort, startNats, startRedis } from '../src/index';

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function redisCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('error', reject);
    socket.once('connect', () => socket.write(`${command}\r\n`));
    socket.once('data', (chunk) => {
      socket.destroy();
      resolve(chunk.toString('utf8'));
    });
  });
}

describe('freePort', () => {
  it('returns a bindable port that is currently closed', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    expect(await canConnect(port)).toBe(false);
  });
});

describe('startNats', () => {
  it('keeps JetStream data across kill -9 and restart on the same port', async () => {
    const nats = await startNats();
    try {
      expect(nats.url).toBe(`nats://127.0.0.1:${nats.port}`);
      let nc = await connect({ servers: nats.url });
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: 'T', subjects: ['t.>'] });
      await jetstream(nc).publish('t.one', 'persisted');
      await nc.close();

      await nats.kill();
      expect(await canConnect(nats.port)).toBe(false);
      await nats.restart();

      nc = await connect({ servers: nats.url });
      const info = await (await jetstreamManager(nc)).streams.info('T');
      expect(info.state.messages).toBe(1);
      const stored = await (await jetstreamManager(nc)).streams.getMessage('T', { seq: 1 });
      expect(stored!.string()).toBe('persisted');
      await nc.close();
    } finally {
      await nats.stop();
    }
    expect(await canConnect(nats.port)).toBe(false);
  });

  it('runs without JetStream when asked', async () => {
    const nats = await startNats({ jetstream: false });
    try {
      const nc = await connect({ servers: nats.url });
      await expect(jetstreamManager(nc)).rejects.toThrow();
      await nc.close();
    } finally {
      await nats.stop();
    }
  });

  it('returns an external handle that refuses kill/restart when NATS_URL is reused', async () => {
    const previous = process.env.NATS_URL;
    process.env.NATS_URL = 'nats://127.0.0.1:4999';
    try {
      const external = await startNats({ reuseExternal: true });
      expect(external).toMatchObject({ url: 'nats://127.0.0.1:4999', port: 4999, external: true });
      await expect(external.kill()).rejects.toThrow(/kill\(\) is not possible on the external nats-server/);
      await expect(external.restart()).rejects.toThrow(/reuseExternal/);
      await external.stop();
    } finally {
      if (previous === undefined) delete process.env.NATS_URL;
      else process.env.NATS_URL = previous;
    }
  });
});

describe('startRedis', () => {
  it('answers PING, loses state on kill (persistence off) and comes back on the same port', async () => {
    const redis = await startRedis();
    try {
      expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
      expect(await redisCommand(redis.port, 'SET k v')).toBe('+OK\r\n');
      await redis.kill();
      expect(await canConnect(redis.port)).toBe(false);
      await redis.restart();
      expect(await redisCommand(redis.port, 'GET k')).toBe('$-1\r\n');
    } finally {
      await redis.stop();
    }
    expect(await canConnect(redis.port)).toBe(false);
  });

  it('reports the binary output when the server cannot start', async () => {
    await expect(startRedis({ binary: '/nonexistent/redis-server' })).rejects.toThrow(/redis-server/);
  });

  it('removes its temp dir on stop', async () => {
    const redis = await startRedis();
    // The dir is internal to the handle; ask the server where it lives.
    const reply = await redisCommand(redis.port, 'CONFIG GET dir');
    const path = reply.split('\r\n')[4]!;
    expect(existsSync(path)).toBe(true);
    await redis.stop();
    expect(existsSync(path)).toBe(false);
  });
});
