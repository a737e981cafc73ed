/** Base class of every error this package's client raises; catch it to catch them all. */
export class MaritacaBatchError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}
