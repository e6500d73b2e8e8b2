/** Configuration: one typed config from defaults, file, environment and flags. */

export { checkBindAddress, isLoopback } from './bind.ts';
export {
  CONFIG_FILE_NAME,
  ConfigError,
  isSecret,
  type ConfigInputs,
  type ConfigSource,
  type LoadedConfig,
  loadConfig,
  type ReckonConfig,
  SETTINGS,
} from './config.ts';
export { statsRulesOf } from './rules.ts';
