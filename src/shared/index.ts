export * from './constants';
export * from './duration';
export * from './failures';
export * from './messages';
export * from './prices';
export * from './schema';
export * from './types';
export * from './resolve';
