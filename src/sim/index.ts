/** Simulator: deterministic traffic with faults, and the oracle that knows the exact answer. */
export {
  DEFAULT_FAULTS,
  DEFAULT_SIMULATION,
  FAULT_NAMES,
  type FaultRates,
  NO_FAULTS,
  type ProgressCallback,
  type Simulation,
  type SimulationCounts,
  type SimulationOptions,
  simulate,
} from './generate.ts';
export {
  type ClickVerdict,
  classifyClicks,
  type ExpectedRow,
  type ExpectedStatistics,
  expectedStatistics,
  NO_PLACEMENT,
  type OracleClick,
  type OracleEmission,
  type OracleEvent,
  type OracleRules,
} from './oracle.ts';
export { SeededRandom, ZipfSampler } from './random.ts';
export { writeSimulation } from './write.ts';
