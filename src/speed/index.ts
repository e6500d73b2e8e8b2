/** Speed layer: the click-emission joiner and minute aggregator (and, later, the multi-DC merger). */
export {
  type MinuteDelta,
  NO_PLACEMENT,
  SpeedEngine,
  type SpeedEngineOptions,
  type SpeedEngineState,
} from './engine.ts';
export {
  type EventDecoder,
  registryDecoder,
  SpeedLayer,
  type SpeedLayerOptions,
  type SpeedSink,
} from './speed-layer.ts';
