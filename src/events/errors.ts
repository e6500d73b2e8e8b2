/**
 * Base class of every error reckon throws on purpose. `code` is stable and machine-readable
 * (like fastify's FST_ERR_* codes); `retriable` says whether the same call may succeed later.
 */
export class ReckonError extends Error {
  /** Stable error code, e.g. `RECKON_CONFIG_INVALID`. */
  readonly code: string;
  /** True when retrying the same operation later may succeed. */
  readonly retriable: boolean;

  constructor(code: string, message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ReckonError';
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
}
