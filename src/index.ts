/**
 * dpf — run one function over every partition of a dataset, in parallel, and keep what each
 * partition produced. The public API; everything else in the package is internal.
 */
export { DPF, type DPFOptions, type StageRunOptions, type DataFrameRunOptions } from './dpf.js';
export type { DataFrameSource } from './plan/dataframe-source.js';
export type { PostgresSource } from './plan/postgres-source.js';
export { DPFRun, type RunProgress, type WaitOptions } from './run/dpf-run.js';
export { rerunFailed, type RerunOptions } from './rerun-failed.js';
export type { SinglePartitionDetails } from './run/partition-details.js';
export type { ArtifactsManager } from './run/artifacts-manager.js';
export type { PartitionEvent } from './run/run-state.js';
export type { OnExistingArtifacts } from './run/start-run.js';
export type { StageInput, DataFrameInput } from './run/run-spec.js';
export { RunStatus, PartitionStatus } from './status.js';
export { ManyModelTraining, TrainingRun, type ManyModelTrainingOptions, type PartitionModel } from './models/many-model-training.js';
export { ManyModelInference, InferenceRun, type ManyModelInferenceOptions } from './models/many-model-inference.js';
export type { InferenceFunction, MissingModelPolicy } from './models/inference-layer.js';
export type { ModelSource } from './models/predictions.js';
export { jsonSerde, bytesSerde, type ModelSerde, type ModelLoader, type JsonSerdeOptions, type BytesSerdeOptions } from './models/model-serde.js';
export type { ExecutionOptions } from './execution-options.js';
export type { DataConnector, BatchOptions, ColumnValues } from './data/data-connector.js';
export type { FeatureOptions, Features, FeatureDtype, FeatureArray, FeatureNulls } from './data/features.js';
export type { PartitionContext, PartitionLog, UploadOptions, DownloadOptions } from './execute/partition-context.js';
export type { SqlSession } from './execute/sql-session.js';
export type { PartitionFunction, PartitionModule } from './execute/partition-module.js';
export type { PartitionKey } from './model/partition.js';
export type { WriteFunction, ReadFunction } from './stage/artifact-format.js';
export {
  DPFError,
  InvalidOptionError,
  ModuleLoadError,
  ModuleMismatchError,
  QueueError,
  InputLocationError,
  RunExistsError,
  RunInProgressError,
  RunNotFoundError,
  NothingToRerunError,
  RunAbandonedError,
  StageError,
  StageDamagedError,
  LocalFileError,
  StageFormatError,
  LeaseLostError,
  SessionDatabaseError,
  ArtifactNameError,
  ArtifactNotFoundError,
  AttemptEndedError,
  UnawaitedCallError,
  SerializationError,
  RecordsTypeError,
  SourceError,
  DataFormatError,
  FeatureColumnError,
  PartitionError,
  PartitionTimeoutError,
  PartitionCancelledError,
  PartitionTooLargeError,
  WorkerCrashError,
  ModelNotFoundError,
  ModelSerdeError,
  type PartitionErrorOptions,
  type SerializedError,
} from './errors.js';
