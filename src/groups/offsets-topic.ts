/**
 * Creates the internal `__consumer_offsets` topic once per cluster: every node runs this loop, and
 * whichever node leads the controller proposes the topic when it is missing (the metadata state
 * machine ignores a second creation). The loop stops once the topic exists.
 */
import type { Clock, TimerHandle } from "../lib/clock.js";
import type { Logger } from "../lib/logger.js";
import type { ControllerFrontend } from "../controller/frontend.js";
import type { MetadataState } from "../controller/metadata.js";
import { OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS } from "./coordinator.js";

/** How often a node checks whether the offsets topic exists yet. */
export const OFFSETS_TOPIC_CHECK_INTERVAL_MS = 200;

export function ensureOffsetsTopic(frontend: ControllerFrontend, metadata: MetadataState, clock: Clock, log: Logger): { stop(): void } {
  let stopped = false;
  let timer: TimerHandle | undefined;
  const pass = (): void => {
    if (stopped || metadata.internalTopics.has(OFFSETS_TOPIC)) return;
    frontend.ensureInternalTopic(OFFSETS_TOPIC, "group-offsets", OFFSETS_TOPIC_PARTITIONS).then(
      (proposed) => {
        if (proposed) log.info({ topic: OFFSETS_TOPIC, partitions: OFFSETS_TOPIC_PARTITIONS }, "created the consumer offsets topic");
      },
      (e: unknown) => log.debug({ err: String(e) }, "creating the consumer offsets topic failed; retrying"),
    ).finally(() => {
      if (!stopped) timer = clock.setTimer(OFFSETS_TOPIC_CHECK_INTERVAL_MS, pass);
    });
  };
  timer = clock.setTimer(0, pass);
  return {
    stop: () => {
      stopped = true;
      timer?.cancel();
    },
  };
}
