/**
 * The small logging interface that the core and libraries take. `server/` adapts pino to it,
 * with child loggers bound to `node`, `group` and `component`. Messages are short verb phrases;
 * the fields carry the data: `log.info({ term, from }, "became follower")`.
 */
export interface Logger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
  child(bindings: object): Logger;
}

/** A logger that drops everything; the default for the core and for tests. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
