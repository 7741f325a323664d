/**
 * A config file that cannot be used. `problems` are `key.path: what is wrong`
 * lines so an operator can fix every one in one pass, not one per restart.
 */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid config ${source}:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}
