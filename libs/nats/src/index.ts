export type {
  EventBus,
  BusMessage,
  DurableMessage,
  Headers,
  PublishOptions,
  DurablePublishOptions,
  Subscription,
  StreamSpec,
  ConsumeOptions,
  Consumer,
  KvStore,
  KvEntry,
  KvWatchOptions,
  KvWatcher,
  BusStatus,
  BusLogger,
} from './event-bus';
export { KvConflictError, isKvConflictError } from './event-bus';
export { createNatsEventBus, type NatsEventBusOptions } from './nats-event-bus';
export { createMemoryEventBus, createMemoryBroker, type MemoryBroker, type MemoryEventBusOptions } from './memory-event-bus';
export {
  subjects,
  deploymentKey,
  assertToken,
  assertPublishSubject,
  subjectMatches,
  SUBJECT_ROOT,
  OUTCOMES_STREAM,
  OUTCOMES_SUBJECTS,
  KV_BUCKETS,
  PRESENCE_SUBJECTS,
  JOBS_STREAM,
  JOBS_QUEUE_SUBJECTS,
  type SubjectKind,
} from './subjects';
export { createReplicaPresence, type ReplicaPresence, type ReplicaPresenceOptions } from './presence';
