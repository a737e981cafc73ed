import {
  startFakeMaritaca,
  type FakeMaritacaOptions,
  type FakeMaritacaServer,
} from '../../src/testing/fake-maritaca';

/**
 * Starts fake Maritaca servers expecting `apiKey` and closes every one after each test, so a
 * failing test cannot leave a server listening for the next. Call at a test file's top level.
 */
export function fakeServersFor(
  apiKey: string,
): (options?: FakeMaritacaOptions) => Promise<FakeMaritacaServer> {
  const running: FakeMaritacaServer[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((server) => server.close()));
  });
  return async (options = {}) => {
    const server = await startFakeMaritaca({ apiKey, ...options });
    running.push(server);
    return server;
  };
}
