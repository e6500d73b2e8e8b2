/** Speed layer: the multi-DC merger, the click-emission joiner and the minute aggregator. */
export {
  type MinuteDelta,
  NO_PLACEMENT,
  SpeedEngine,
  type SpeedEngineOptions,
  type SpeedEngineState,
} from './engine.ts';
export { type MergerFigures, StreamMerger } from './merger.ts';
export {
  ALIGNED_WATERMARK_TOPIC,
  type EventKind,
  SpeedLayer,
  type SpeedLayerOptions,
  type SpeedSink,
} from './speed-layer.ts';
