/** A Logger that keeps its lines in memory, for tests that check what was logged. */
import type { Logger } from "../../lib/logger.js";

export interface LogLine {
  readonly level: "debug" | "info" | "warn" | "error";
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

/** Records every line, with the bindings of its child loggers merged into the fields. */
export class MemoryLogger implements Logger {
  constructor(
    readonly lines: LogLine[] = [],
    private readonly bindings: object = {},
  ) {}

  debug(fields: object, message: string): void {
    this.add("debug", fields, message);
  }

  info(fields: object, message: string): void {
    this.add("info", fields, message);
  }

  warn(fields: object, message: string): void {
    this.add("warn", fields, message);
  }

  error(fields: object, message: string): void {
    this.add("error", fields, message);
  }

  child(bindings: object): Logger {
    return new MemoryLogger(this.lines, { ...this.bindings, ...bindings });
  }

  /** The lines whose message contains `text`. */
  find(text: string): LogLine[] {
    return this.lines.filter((l) => l.message.includes(text));
  }

  private add(level: LogLine["level"], fields: object, message: string): void {
    this.lines.push({ level, fields: { ...this.bindings, ...fields }, message });
  }
}
