import { ReckonError } from '../events/index.ts';

/** A command line that cannot be carried out as given. */
export class UsageError extends ReckonError {
  constructor(message: string) {
    super('RECKON_USAGE', message);
    this.name = 'UsageError';
  }
}
