/** Adapts pino to the small Logger interface the libraries take. */
import { pino, type Logger as Pino } from "pino";
import type { Logger } from "../lib/logger.js";

class PinoLogger implements Logger {
  constructor(private readonly p: Pino) {}
  debug(fields: object, message: string): void {
    this.p.debug(fields, message);
  }
  info(fields: object, message: string): void {
    this.p.info(fields, message);
  }
  warn(fields: object, message: string): void {
    this.p.warn(fields, message);
  }
  error(fields: object, message: string): void {
    this.p.error(fields, message);
  }
  child(bindings: object): Logger {
    return new PinoLogger(this.p.child(bindings));
  }
}

/** A JSON-lines logger on stdout bound to the node id; one line per event. */
export function createLogger(nodeId: number, level: string): Logger {
  return new PinoLogger(pino({ level, base: { node: nodeId } }));
}
