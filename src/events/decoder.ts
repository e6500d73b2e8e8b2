/**
 * One way to turn log records into events, shared by every consumer of the event topics (the
 * speed layer, the archiver): Avro in Confluent wire format, decoded with the registry's writer
 * schemas.
 */
import { decodeClick, decodeEmission, type WriterTypeLookup } from './avro.ts';
import type { SchemaRegistry } from './registry.ts';
import type { Click, Emission } from './types.ts';

/** Turns log records into events (Avro with registry schema ids). */
export interface EventDecoder {
  emission(value: Buffer): Emission | Promise<Emission>;
  click(value: Buffer): Click | Promise<Click>;
  /**
   * The writer schema of a registry id, when already known: the archiver stages records written
   * with reckon's own schema straight from their bytes, without an event object.
   */
  writerOf?: WriterTypeLookup;
}

/** Decodes events with the registry's writer schemas (any registered version), fetching unknown ids. */
export function registryDecoder(registry: SchemaRegistry): EventDecoder {
  const lookup = registry.writerTypeLookup();
  const decode = <T>(value: Buffer, decoder: (m: Buffer, writerOf: WriterTypeLookup) => T): T | Promise<T> => {
    try {
      return decoder(value, lookup);
    } catch (e) {
      if ((e as { code?: string }).code === 'RECKON_AVRO_UNKNOWN_SCHEMA') return registry.decode(value, decoder);
      throw e;
    }
  };
  return { emission: (v) => decode(v, decodeEmission), click: (v) => decode(v, decodeClick), writerOf: lookup };
}
