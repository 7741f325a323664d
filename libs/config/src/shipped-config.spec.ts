import { join } from 'node:path';
import { loadConfigFile } from './load';

// The config shipped in deploy/ is what `npm run stack` and the demo use: it must stay valid.
describe('deploy/config/switchyard.yaml', () => {
  it('is a valid config', () => {
    const config = loadConfigFile(join(__dirname, '../../../deploy/config/switchyard.yaml'), { SIMULATOR_URL: 'http://127.0.0.1:1' });
    expect(Object.keys(config.routes)).toEqual(['chat', 'claude', 'cheap']);
    expect(config.deployments['azure-gpt4o'].apiVersion).toBe('2024-10-21');
  });
});
