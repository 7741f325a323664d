import { create } from '@bufbuild/protobuf';
import { JobSchema, JobState } from '@switchyard/contracts';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNats, type ServerHandle } from '@switchyard/testing';
import { createNatsJobStore, type JobStore } from '../src/adapters/job-store';
import { newJobId } from '../src/domain/job-id';

/** The job store against a real JetStream KV bucket. */
describe('NATS job store', () => {
  let nats: ServerHandle;
  let nc: NatsConnection;
  let store: JobStore;

  beforeAll(async () => {
    nats = await startNats({ jetstream: true });
    nc = await connect({ servers: nats.url });
    store = await createNatsJobStore(nc, { ttlMs: 60_000 });
  }, 30_000);

  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it('lists each job once, newest first, while its records are being updated', async () => {
    const tenant = 'listing';
    const records = new Map<string, number>();
    for (let i = 0; i < 200; i++) {
      const jobId = newJobId(1_700_000_000_000 + i);
      const job = create(JobSchema, { jobId, tenant, state: JobState.QUEUED });
      records.set(jobId, await store.create({ job, sealedKey: new Uint8Array() }));
    }
    const expected = [...records.keys()].sort().reverse();

    // Workers move jobs on while ListJobs reads the keys: a key written after
    // the listing began is delivered to it a second time.
    let listing = true;
    const updates = (async () => {
      let rounds = 0;
      while (listing || rounds === 0) {
        for (const [jobId, revision] of records) {
          const job = create(JobSchema, { jobId, tenant, state: JobState.RUNNING });
          records.set(jobId, await store.update({ job, sealedKey: new Uint8Array() }, revision));
        }
        rounds++;
      }
      return rounds;
    })();
    const listings: string[][] = [];
    for (let i = 0; i < 10; i++) listings.push(await store.listIds(tenant));
    listing = false;
    expect(await updates).toBeGreaterThan(0);

    for (const ids of listings) expect(ids).toEqual(expected);
  }, 30_000);
});
