import { ReckonError } from '../events/index.ts';

/** Typed log errors. Codes are stable; `retriable` says whether the same call may succeed later. */
export const LogErrors = {
  unknownTopic: (topic: string) =>
    new ReckonError('RECKON_LOG_UNKNOWN_TOPIC', `topic "${topic}" does not exist; create it first (createTopic)`),
  unknownPartition: (topic: string, partition: number, count: number) =>
    new ReckonError(
      'RECKON_LOG_UNKNOWN_PARTITION',
      `topic "${topic}" has partitions 0..${count - 1}; partition ${partition} does not exist`,
    ),
  offsetOutOfRange: (topic: string, partition: number, offset: number, earliest: number, latest: number) =>
    new ReckonError(
      'RECKON_LOG_OFFSET_OUT_OF_RANGE',
      `offset ${offset} of ${topic}/${partition} is outside the log (earliest ${earliest}, latest ${latest}); ` +
        'records below the earliest offset were removed by retention',
    ),
  corrupt: (where: string, detail: string) =>
    new ReckonError(
      'RECKON_LOG_CORRUPT',
      `corrupt log data in ${where}: ${detail}. Acknowledged data failed its checksum: restore this file from a backup`,
    ),
  badName: (what: string, name: string) =>
    new ReckonError(
      'RECKON_LOG_BAD_NAME',
      `${what} name ${JSON.stringify(name)} is invalid: use 1-249 characters of letters, digits, '.', '_' or '-'`,
    ),
  closed: () => new ReckonError('RECKON_LOG_CLOSED', 'the log is closed'),
};

const NAME = /^[A-Za-z0-9._-]{1,249}$/;

/** Checks a topic or group name (Kafka's rules, so names work on both implementations). */
export function checkName(what: 'topic' | 'group', name: string): void {
  if (!NAME.test(name) || name === '.' || name === '..') throw LogErrors.badName(what, name);
}
