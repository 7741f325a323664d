export { connectRedis, closeRedis, type ConnectRedisOptions } from './connect';
export { createRedisClient, redisTime, reconnectDelay, waitUntilReady, type CreateRedisClientOptions, type RedisLogger, type Redis } from './client';
export { defineScript, type ScriptDefinition, type ScriptFn } from './script';
export { key, hashTagOf, assertSameSlot } from './keys';
export { isUnreachable } from './unreachable';
