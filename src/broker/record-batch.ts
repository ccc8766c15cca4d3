/**
 * The broker's import point for the record batch format (src/format): the partition reads batch
 * headers, the broker validates and stamps produced batches, fetch decodes them.
 */
export {
  BATCH_HEADER_BYTES,
  BATCH_MAGIC,
  BatchFormatError,
  HEADER_KEY_BYTES_MAX,
  HEADERS_PER_RECORD_MAX,
  KIND_RECORDS,
  PRIORITY_MAX,
  RECORD_ID_BYTES_MAX,
  RECORD_STRING_BYTES_MAX,
  RecordLimitError,
  decodeBatch,
  encodeBatch,
  isExpired,
  readBatchHeader,
  recordSizeBytes,
  stampBrokerTimestamp,
  validateBatch,
  type BatchHeader,
  type BatchLimits,
  type BatchProducer,
  type EncodeOptions,
  type ProducedRecord,
  type RecordHeader,
  type StoredRecord,
} from "../format/index.js";
