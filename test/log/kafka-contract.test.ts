/**
 * The Log contract against Kafka: librdkafka's mock cluster started here, or a real cluster
 * when KAFKA_BROKERS (comma-separated host:port) is set.
 */
import { KafkaLog } from '../../src/log/index.ts';
import { startMockKafka } from '../support/kafka-mock.ts';
import { logContract } from './contract.ts';

logContract(
  process.env.KAFKA_BROKERS ? `Kafka at ${process.env.KAFKA_BROKERS}` : "Kafka (librdkafka's mock cluster, 3 brokers)",
  async () => {
    const real = process.env.KAFKA_BROKERS;
    if (real !== undefined) {
      const brokers = real.split(',');
      return {
        open: () => KafkaLog.connect({ brokers }),
        createTopic: (log, name, partitions) => log.createTopic({ name, partitions }),
        retention: false,
        teardown: async () => undefined,
      };
    }
    const mock = await startMockKafka(3);
    return {
      open: () =>
        KafkaLog.connect({
          brokers: mock.brokers,
          createTopic: (spec) => mock.createTopic(spec.name, spec.partitions),
        }),
      createTopic: (log, name, partitions) => log.createTopic({ name, partitions }),
      retention: false,
      teardown: () => mock.stop(),
    };
  },
);
