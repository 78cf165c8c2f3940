/**
 * A linear model `y = X·w + b` as the bytes of an ONNX model, written without a protobuf or ONNX
 * library: a graph of MatMul and Add over an input `X` of shape [N, k] giving `Y` of shape [N, 1],
 * with the weights and the bias as initializers. Any ONNX runtime scores it, e.g. onnxruntime-node:
 * `(await InferenceSession.create(bytes)).run({ X: new Tensor('float32', values, [n, k]) })`.
 */
import { InvalidOptionError } from 'dpf';
import { bytesField, intField, message, packedDoubles, packedFloats, packedInts, stringField } from './protobuf-writer.js';

/** Options of {@link linearModelToOnnx}. */
export interface LinearOnnxOptions {
  /**
   * The element type of the input, the output and the coefficients: `'float32'` (ONNX FLOAT, the
   * type most runtimes and tools expect) or `'float64'` (ONNX DOUBLE, which keeps coefficients
   * fitted in JavaScript numbers exactly). Default `'float32'`.
   */
  elementType?: 'float32' | 'float64';
  /** The name of the graph's input. Default `'X'`. */
  inputName?: string;
  /** The name of the graph's output. Default `'Y'`. */
  outputName?: string;
}

// ONNX's TensorProto.DataType values.
const ONNX_FLOAT = 1;
const ONNX_DOUBLE = 11;
/** The IR version and the opset of the default domain written: ONNX 1.8's, read by every runtime since 2020. */
const IR_VERSION = 7;
const OPSET = 13;

/** The ONNX model bytes of `y = X·w + b` for `weights` w (one per input column) and `bias` b. */
export function linearModelToOnnx(weights: readonly number[], bias: number, options: LinearOnnxOptions = {}): Uint8Array {
  const elementType = options.elementType ?? 'float32';
  const inputName = options.inputName ?? 'X';
  const outputName = options.outputName ?? 'Y';
  if (weights.length === 0) throw new InvalidOptionError('weights', 'a linear model needs at least one weight (one per input column)');
  const bad = [...weights, bias].findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    const what = bad < weights.length ? `weights[${bad}]` : 'bias';
    throw new InvalidOptionError(what, `is ${String([...weights, bias][bad])}; an ONNX linear model needs finite coefficients`);
  }
  if (elementType !== 'float32' && elementType !== 'float64') {
    throw new InvalidOptionError('elementType', `is ${JSON.stringify(elementType)}; use 'float32' or 'float64'`);
  }
  if (inputName === '' || outputName === '' || inputName === outputName) {
    throw new InvalidOptionError('inputName/outputName', 'must be two different, non-empty names');
  }
  const dataType = elementType === 'float32' ? ONNX_FLOAT : ONNX_DOUBLE;
  const values = (field: number, data: readonly number[]) => (elementType === 'float32' ? packedFloats(field, data) : packedDoubles(field, data));
  const k = weights.length;

  // TensorProto: dims = 1, data_type = 2, float_data = 4, name = 8, double_data = 10.
  const tensor = (name: string, dims: number[], data: readonly number[]) =>
    message(packedInts(1, dims), intField(2, dataType), values(elementType === 'float32' ? 4 : 10, data), stringField(8, name));
  // TensorShapeProto.Dimension: dim_value = 1, dim_param = 2.
  const dim = (d: number | string) => (typeof d === 'number' ? intField(1, d) : stringField(2, d));
  // ValueInfoProto { name = 1, type = 2 } → TypeProto { tensor_type = 1 } → Tensor { elem_type = 1, shape = 2 } → TensorShapeProto { dim = 1 }.
  const valueInfo = (name: string, shape: (number | string)[]) =>
    message(
      stringField(1, name),
      bytesField(2, bytesField(1, message(intField(1, dataType), bytesField(2, message(...shape.map((d) => bytesField(1, dim(d)))))))),
    );
  // NodeProto: input = 1, output = 2, name = 3, op_type = 4.
  const node = (opType: string, inputs: string[], output: string) =>
    message(...inputs.map((i) => stringField(1, i)), stringField(2, output), stringField(3, opType.toLowerCase()), stringField(4, opType));

  const weightsName = 'w';
  const biasName = 'b';
  const productName = 'Xw';
  // GraphProto: node = 1, name = 2, initializer = 5, input = 11, output = 12.
  const graph = message(
    bytesField(1, node('MatMul', [inputName, weightsName], productName)),
    bytesField(1, node('Add', [productName, biasName], outputName)),
    stringField(2, 'linear'),
    bytesField(5, tensor(weightsName, [k, 1], weights)),
    bytesField(5, tensor(biasName, [1], [bias])),
    bytesField(11, valueInfo(inputName, ['N', k])),
    bytesField(12, valueInfo(outputName, ['N', 1])),
  );
  // ModelProto: ir_version = 1, producer_name = 2, graph = 7, opset_import = 8 (OperatorSetIdProto: domain = 1, version = 2).
  return message(intField(1, IR_VERSION), stringField(2, 'dpf'), bytesField(7, graph), bytesField(8, message(stringField(1, ''), intField(2, OPSET))));
}
