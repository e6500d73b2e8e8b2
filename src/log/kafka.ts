/**
 * The Kafka implementation of {@link Log}, for the distributed mode, on kafkajs.
 *
 * Reads are pull-based by (partition, offset) like the embedded log's. kafkajs offers no public
 * call for that (its consumer only runs inside a group subscription), so reads use its cluster
 * and broker objects for a plain Fetch request; group offsets are committed with a standalone
 * OffsetCommit (generation -1), as Kafka's "simple consumer" does. Retention is the broker's
 * job (topic configs `retention.ms` and `retention.bytes`, set by createTopic).
 */
import kafkajs, { type Admin, type Kafka, type PartitionAssigner, type Producer } from 'kafkajs';
import { ReckonError } from '../events/index.ts';
import { checkName, LogErrors } from './errors.ts';
import { assignRoundRobin } from './group.ts';
import { partitionForKeyBytes } from './murmur2.ts';
import type {
  AppendedRange,
  AssignmentListener,
  GroupMember,
  Log,
  LogRecord,
  PartitionOffset,
  ReadOptions,
  RecordInput,
  RetentionReport,
  TopicPartition,
  TopicSpec,
} from './types.ts';

/** Options of {@link KafkaLog}. */
export interface KafkaLogOptions {
  /** Bootstrap brokers, `host:port`. */
  brokers: string[];
  clientId?: string;
  /** Creates a topic where the broker cannot (librdkafka's mock cluster has no CreateTopics). */
  createTopic?: (spec: TopicSpec) => Promise<void>;
  /** How often a waiting read asks again. Default 50 ms. */
  pollIntervalMs?: number;
  /** A group member that misses heartbeats this long is removed and its partitions move. Default 6 s. */
  sessionTimeoutMs?: number;
  /**
   * How long a group leader waits before sending its assignment. Default 0. librdkafka's mock
   * cluster completes a rebalance on the leader's SyncGroup and refuses a follower's SyncGroup
   * that arrives after it (INVALID_REQUEST); tests against the mock set this so the followers'
   * SyncGroups come first. A real broker holds the followers until the leader's arrives.
   */
  leaderSyncDelayMs?: number;
}

interface FetchedMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  timestamp: string;
  headers?: Record<string, Buffer | Buffer[] | undefined>;
  isControlRecord?: boolean;
}

interface FetchResponse {
  responses: {
    partitions: { partition: number; errorCode: number; highWatermark: string; messages: FetchedMessage[] }[];
  }[];
}

interface BrokerHandle {
  fetch(request: unknown): Promise<FetchResponse>;
  offsetCommit(request: unknown): Promise<unknown>;
}

interface ClusterHandle {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  refreshMetadata(): Promise<void>;
  findLeaderForPartitions(topic: string, partitions: number[]): Record<string, number[]>;
  findBroker(args: { nodeId: string }): Promise<BrokerHandle>;
  findGroupCoordinator(args: { groupId: string }): Promise<BrokerHandle>;
}

const EMPTY = Buffer.alloc(0);

/**
 * reckon's kafkajs partition assigner: partitions dealt round-robin over the sorted members, the
 * same rule as the embedded log's groups; every member gets an assignment, empty when there are
 * more members than partitions (kafkajs's own round-robin leaves such members out).
 */
function roundRobinAssigner(leaderSyncDelayMs: number): PartitionAssigner {
  const { MemberAssignment, MemberMetadata } = kafkajs.AssignerProtocol;
  const name = 'ReckonRoundRobin';
  return ({ cluster }) => ({
    name,
    version: 0,
    async assign({ members, topics }) {
      if (leaderSyncDelayMs > 0) await new Promise((r) => setTimeout(r, leaderSyncDelayMs));
      const all = topics.flatMap((topic) =>
        cluster.findTopicPartitionMetadata(topic).map((m) => ({ topic, partition: m.partitionId })),
      );
      const ids = members.map((m) => m.memberId);
      return ids.map((memberId) => {
        const assignment: Record<string, number[]> = {};
        for (const tp of assignRoundRobin(ids, all, memberId)) (assignment[tp.topic] ??= []).push(tp.partition);
        return {
          memberId,
          memberAssignment: MemberAssignment.encode({ version: 0, assignment, userData: EMPTY }),
        };
      });
    },
    protocol: ({ topics }) => ({
      name,
      metadata: MemberMetadata.encode({ version: 0, topics, userData: EMPTY }),
    }),
  });
}

function kafkaCode(e: unknown): string | undefined {
  return (e as { type?: string }).type;
}

/** The Kafka implementation of the log. */
export class KafkaLog implements Log {
  readonly kind = 'kafka' as const;
  private readonly kafka: Kafka;
  private readonly producer: Producer;
  private readonly admin: Admin;
  private readonly cluster: ClusterHandle;
  private readonly partitions = new Map<string, number>();
  private readonly roundRobin = new Map<string, number>();
  private readonly pollIntervalMs: number;

  private constructor(private readonly options: KafkaLogOptions) {
    this.kafka = new kafkajs.Kafka({
      brokers: options.brokers,
      clientId: options.clientId ?? 'reckon',
      logLevel: kafkajs.logLevel.NOTHING,
      retry: { retries: 5, initialRetryTime: 100 },
    });
    // Ordered, durable appends: all in-sync replicas acknowledge; one request in flight keeps order across retries.
    this.producer = this.kafka.producer({ allowAutoTopicCreation: false, maxInFlightRequests: 1, idempotent: false });
    this.admin = this.kafka.admin();
    const symbol = Object.getOwnPropertySymbols(this.kafka).find(
      (s) => s.description === 'private:Kafka:createCluster',
    );
    if (symbol === undefined)
      throw new ReckonError(
        'RECKON_KAFKA_CLIENT',
        'this kafkajs version does not expose its cluster; use kafkajs 2.2.x',
      );
    const createCluster = (this.kafka as unknown as Record<symbol, (o: unknown) => ClusterHandle>)[symbol] as (
      o: unknown,
    ) => ClusterHandle;
    this.cluster = createCluster({ allowAutoTopicCreation: false });
    this.pollIntervalMs = options.pollIntervalMs ?? 50;
  }

  /** Connects to the brokers. */
  static async connect(options: KafkaLogOptions): Promise<KafkaLog> {
    const log = new KafkaLog(options);
    try {
      await Promise.all([log.producer.connect(), log.admin.connect(), log.cluster.connect()]);
    } catch (e) {
      await log.close().catch(() => undefined);
      throw new ReckonError(
        'RECKON_KAFKA_UNREACHABLE',
        `cannot connect to Kafka at ${options.brokers.join(',')}: ${(e as Error).message}`,
        {
          retriable: true,
          cause: e,
        },
      );
    }
    return log;
  }

  private async count(topic: string): Promise<number> {
    const known = this.partitions.get(topic);
    if (known !== undefined) return known;
    checkName('topic', topic);
    // Listing does not create topics; a metadata request for a missing topic might (auto-creation).
    if (!(await this.admin.listTopics()).includes(topic)) throw LogErrors.unknownTopic(topic);
    const meta = await this.admin.fetchTopicMetadata({ topics: [topic] });
    const n = meta.topics[0]?.partitions.length ?? 0;
    if (n === 0) throw LogErrors.unknownTopic(topic);
    this.partitions.set(topic, n);
    return n;
  }

  private async checkPartition(topic: string, partition: number): Promise<number> {
    const n = await this.count(topic);
    if (!Number.isInteger(partition) || partition < 0 || partition >= n)
      throw LogErrors.unknownPartition(topic, partition, n);
    return n;
  }

  async createTopic(spec: TopicSpec): Promise<void> {
    checkName('topic', spec.name);
    const exists = (await this.admin.listTopics()).includes(spec.name);
    if (!exists) {
      if (this.options.createTopic !== undefined) {
        await this.options.createTopic(spec);
      } else {
        const configEntries = [];
        if (spec.retention?.ms !== undefined)
          configEntries.push({ name: 'retention.ms', value: String(spec.retention.ms) });
        if (spec.retention?.bytes !== undefined)
          configEntries.push({ name: 'retention.bytes', value: String(spec.retention.bytes) });
        await this.admin.createTopics({
          waitForLeaders: true,
          topics: [{ topic: spec.name, numPartitions: spec.partitions, configEntries }],
        });
      }
    }
    this.partitions.delete(spec.name);
    const n = await this.count(spec.name);
    if (n !== spec.partitions) {
      throw new ReckonError(
        'RECKON_LOG_TOPIC_EXISTS',
        `topic "${spec.name}" exists with ${n} partitions, not ${spec.partitions}; partition counts are fixed`,
      );
    }
  }

  async partitionCount(topic: string): Promise<number> {
    return this.count(topic);
  }

  async append(topic: string, records: readonly RecordInput[]): Promise<AppendedRange[]> {
    const n = await this.count(topic);
    const counts = new Map<number, number>();
    const messages = records.map((r) => {
      const key = r.key === undefined || r.key === null ? null : typeof r.key === 'string' ? Buffer.from(r.key) : r.key;
      let partition: number;
      if (r.partition !== undefined) {
        if (!Number.isInteger(r.partition) || r.partition < 0 || r.partition >= n)
          throw LogErrors.unknownPartition(topic, r.partition, n);
        partition = r.partition;
      } else if (key !== null) {
        partition = partitionForKeyBytes(key, n);
      } else {
        const next = this.roundRobin.get(topic) ?? 0;
        this.roundRobin.set(topic, next + 1);
        partition = next % n;
      }
      counts.set(partition, (counts.get(partition) ?? 0) + 1);
      return { key, value: r.value, partition, timestamp: String(r.timestamp ?? Date.now()), headers: r.headers };
    });
    if (messages.length === 0) return [];
    const sent = await this.producer.send({ topic, acks: -1, messages });
    return sent.map((m) => ({
      partition: m.partition,
      baseOffset: Number(m.baseOffset),
      count: counts.get(m.partition) ?? 0,
    }));
  }

  private async fetchOnce(topic: string, partition: number, offset: number, maxBytes: number): Promise<LogRecord[]> {
    await this.cluster.addTargetTopic(topic);
    let leaders = this.cluster.findLeaderForPartitions(topic, [partition]);
    if (Object.keys(leaders).length === 0) {
      await this.cluster.refreshMetadata();
      leaders = this.cluster.findLeaderForPartitions(topic, [partition]);
    }
    const [nodeId] = Object.keys(leaders);
    if (nodeId === undefined)
      throw new ReckonError('RECKON_KAFKA_NO_LEADER', `no leader for ${topic}/${partition} yet`, { retriable: true });
    const broker = await this.cluster.findBroker({ nodeId });
    let response: FetchResponse;
    try {
      response = await broker.fetch({
        replicaId: -1,
        isolationLevel: 1,
        maxWaitTime: 0,
        minBytes: 1,
        maxBytes,
        topics: [{ topic, partitions: [{ partition, fetchOffset: String(offset), maxBytes }] }],
      });
    } catch (e) {
      if (kafkaCode(e) === 'OFFSET_OUT_OF_RANGE') {
        const o = await this.admin.fetchTopicOffsets(topic);
        const p = o.find((x) => x.partition === partition);
        throw LogErrors.offsetOutOfRange(topic, partition, offset, Number(p?.low ?? 0), Number(p?.high ?? 0));
      }
      throw e;
    }
    const messages = response.responses[0]?.partitions[0]?.messages ?? [];
    const out: LogRecord[] = [];
    for (const m of messages) {
      // Kafka returns whole batches: records below the requested offset are dropped here.
      const o = Number(m.offset);
      if (m.isControlRecord || o < offset) continue;
      const headers: Record<string, Buffer> = {};
      for (const [name, v] of Object.entries(m.headers ?? {})) {
        if (v !== undefined) headers[name] = Array.isArray(v) ? (v[v.length - 1] as Buffer) : v;
      }
      const value = m.value ?? EMPTY;
      out.push({
        partition,
        offset: o,
        key: m.key,
        value,
        timestamp: Number(m.timestamp),
        headers,
        size: value.length + (m.key?.length ?? 0),
      });
    }
    return out;
  }

  async read(topic: string, partition: number, offset: number, options: ReadOptions = {}): Promise<LogRecord[]> {
    await this.checkPartition(topic, partition);
    if (!Number.isInteger(offset) || offset < 0)
      throw new ReckonError('RECKON_LOG_BAD_OFFSET', `offset must be a non-negative integer, got ${offset}`);
    const maxBytes = options.maxBytes ?? 1024 * 1024;
    const deadline = Date.now() + (options.waitMs ?? 0);
    for (;;) {
      const records = await this.fetchOnce(topic, partition, offset, maxBytes);
      // Fetch long-polling is not relied on (librdkafka's mock does not wake on new data): poll instead.
      if (records.length > 0 || Date.now() >= deadline || options.signal?.aborted) return records;
      await new Promise((r) => setTimeout(r, Math.min(this.pollIntervalMs, Math.max(1, deadline - Date.now()))));
    }
  }

  private async offsets(topic: string, partition: number): Promise<{ low: number; high: number }> {
    await this.checkPartition(topic, partition);
    const p = (await this.admin.fetchTopicOffsets(topic)).find((x) => x.partition === partition);
    return { low: Number(p?.low ?? 0), high: Number(p?.high ?? 0) };
  }

  async earliestOffset(topic: string, partition: number): Promise<number> {
    return (await this.offsets(topic, partition)).low;
  }

  async latestOffset(topic: string, partition: number): Promise<number> {
    return (await this.offsets(topic, partition)).high;
  }

  async commitOffsets(group: string, topic: string, offsets: readonly PartitionOffset[]): Promise<void> {
    checkName('group', group);
    for (const o of offsets) await this.checkPartition(topic, o.partition);
    if (offsets.length === 0) return;
    const coordinator = await this.cluster.findGroupCoordinator({ groupId: group });
    await coordinator.offsetCommit({
      groupId: group,
      groupGenerationId: -1,
      memberId: '',
      topics: [{ topic, partitions: offsets.map((o) => ({ partition: o.partition, offset: String(o.offset) })) }],
    });
  }

  async committedOffsets(group: string, topic: string): Promise<Map<number, number>> {
    checkName('group', group);
    await this.count(topic);
    const out = new Map<number, number>();
    const [t] = await this.admin.fetchOffsets({ groupId: group, topics: [topic] });
    for (const p of t?.partitions ?? []) {
      const o = Number(p.offset);
      if (o >= 0) out.set(p.partition, o);
    }
    return out;
  }

  async joinGroup(group: string, topics: string[], onAssignment: AssignmentListener): Promise<GroupMember> {
    checkName('group', group);
    // kafkajs's consumer is used for membership only (joins, heartbeats, rebalances, commits);
    // its fetching stays paused, records are read through read().
    const consumer = this.kafka.consumer({
      groupId: group,
      sessionTimeout: this.options.sessionTimeoutMs ?? 6000,
      heartbeatInterval: 500,
      partitionAssigners: [roundRobinAssigner(this.options.leaderSyncDelayMs ?? 0)],
      // A crashed consumer (e.g. a protocol error during a rebalance) rejoins instead of leaving the group for good.
      retry: { retries: 10, restartOnFailure: async () => true },
    });
    let chain: Promise<unknown> = Promise.resolve();
    let memberId = '';
    const pauseFetching = (): void => consumer.pause(topics.map((topic) => ({ topic })));
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      memberId = event.payload.memberId;
      // The group exists from the first join on: only then may fetching be paused.
      pauseFetching();
      const assigned: TopicPartition[] = [];
      for (const [topic, partitions] of Object.entries(event.payload.memberAssignment)) {
        for (const partition of partitions as number[]) assigned.push({ topic, partition });
      }
      // At once, also while an earlier assignment is still being applied: the listener orders its work.
      chain = Promise.allSettled([chain, onAssignment(assigned)]);
    });
    await consumer.connect();
    for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: async () => undefined });
    return {
      get memberId() {
        return memberId;
      },
      commit: async (topic, offsets) => {
        await consumer.commitOffsets(offsets.map((o) => ({ topic, partition: o.partition, offset: String(o.offset) })));
      },
      leave: async () => {
        await chain;
        await consumer.disconnect();
      },
    };
  }

  async checkWritable(): Promise<void> {
    try {
      await this.admin.describeCluster();
    } catch (e) {
      throw new ReckonError('RECKON_KAFKA_UNREACHABLE', `Kafka is not reachable: ${(e as Error).message}`, {
        retriable: true,
        cause: e,
      });
    }
  }

  async applyRetention(): Promise<RetentionReport> {
    // Kafka brokers enforce retention.ms / retention.bytes themselves.
    return { segmentsDeleted: 0, bytesDeleted: 0 };
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.producer.disconnect(), this.admin.disconnect(), this.cluster.disconnect()]);
  }
}
