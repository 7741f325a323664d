import { assertFilterSubject, deploymentKey, subjectMatches, subjects, JOBS_QUEUE_SUBJECTS, OUTCOMES_SUBJECTS } from './subjects';

describe('subjects', () => {
  it('builds switchyard.<kind>.<...> subjects', () => {
    expect(subjects.health('openai', 'gpt4o-east')).toBe('switchyard.health.openai.gpt4o-east');
    expect(subjects.quota('azure', 'eu_1')).toBe('switchyard.quota.azure.eu_1');
    expect(subjects.outcome('anthropic', 'sonnet')).toBe('switchyard.outcome.anthropic.sonnet');
    expect(subjects.budget('acme')).toBe('switchyard.budget.acme');
    expect(subjects.all('health')).toBe('switchyard.health.>');
    expect(subjectMatches(OUTCOMES_SUBJECTS, subjects.outcome('a', 'b'))).toBe(true);
    expect(subjectMatches(OUTCOMES_SUBJECTS, subjects.outcomeBatch())).toBe(true);
    expect(subjectMatches('switchyard.outcome.*.*', subjects.outcomeBatch())).toBe(false);
    expect(deploymentKey('openai', 'gpt4o')).toBe('openai.gpt4o');
    expect(subjects.job('acme', 'succeeded')).toBe('switchyard.job.acme.succeeded');
    expect(subjects.jobQueue('batch', 'acme')).toBe('switchyard.jobq.batch.acme');
  });

  it('keeps the jobs work queue apart from job events (a stream on one must not capture the other)', () => {
    expect(subjectMatches(JOBS_QUEUE_SUBJECTS, subjects.jobQueue('interactive', 'acme'))).toBe(true);
    expect(subjectMatches(JOBS_QUEUE_SUBJECTS, subjects.job('acme', 'queued'))).toBe(false);
    expect(subjectMatches(subjects.all('job'), subjects.jobQueue('batch', 'acme'))).toBe(false);
  });

  it.each([
    ['gpt-4.1', 'a dot'],
    ['a*', "the wildcard '*'"],
    ['>', "the wildcard '>'"],
    ['has space', 'whitespace'],
    ['', 'non-empty'],
  ])('rejects the deployment token %j, naming it (%s)', (bad, why) => {
    expect(() => subjects.health('openai', bad)).toThrow(new RegExp(`deployment.*${why.replace(/[*>]/g, '\\$&')}`));
  });

  it('names the field that is wrong', () => {
    expect(() => subjects.budget('a.b')).toThrow(/^tenant "a\.b"/);
    expect(() => subjects.quota('', 'x')).toThrow(/^provider must be a non-empty string/);
  });

  it('matches NATS wildcards like the server does', () => {
    expect(subjectMatches('a.*.c', 'a.b.c')).toBe(true);
    expect(subjectMatches('a.*.c', 'a.b.c.d')).toBe(false);
    expect(subjectMatches('a.>', 'a')).toBe(false);
    expect(subjectMatches('a.>', 'a.b.c')).toBe(true);
    expect(subjectMatches('a.b', 'a.b')).toBe(true);
    expect(subjectMatches('a.b', 'a.c')).toBe(false);
    expect(() => assertFilterSubject('a.>.c')).toThrow(/token 2/);
  });
});
