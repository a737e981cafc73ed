/** Test and demo helpers: the fake Maritaca server and the Temporal dev-server bootstrap. */
export * from './fake-maritaca';
export * from './temporal-cli';
export * from './dev-server';
